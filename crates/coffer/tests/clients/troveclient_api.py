"""The command list of the openstack CLI, through troveclient's Python API.

Run by crates/coffer/tests/real_clients.rs with the test venv's python:
    python troveclient_api.py ENDPOINT
Prints one JSON object of what each call saw; the Rust test asserts on it.
Any exception fails the run (non-zero exit, traceback on stderr).
"""

import json
import sys
import time

from keystoneauth1 import session
from keystoneauth1.token_endpoint import Token
from troveclient.v1 import client

trove = client.Client(session=session.Session(auth=Token(sys.argv[1], "anything")))
seen = {}


def wait(get, want, timeout=120):
    deadline = time.time() + timeout
    while True:
        obj = get()
        if obj.status in want:
            return obj
        if time.time() > deadline:
            raise SystemExit(f"still {obj.status}, wanted {want}")
        time.sleep(0.3)


seen["datastores"] = sorted(d.name for d in trove.datastores.list())
seen["datastore"] = trove.datastores.get("mariadb").name
seen["flavors"] = sorted(f.name for f in trove.flavors.list())
seen["flavor"] = trove.flavors.get(1).ram

inst = trove.instances.create(
    "py1", 1, volume={"size": 1},
    databases=[{"name": "d1"}],
    users=[{"name": "u1", "password": "Pw-u1-12345", "databases": [{"name": "d1"}]}],
    datastore="mariadb", datastore_version="10.11",
)
inst = wait(lambda: trove.instances.get(inst.id), ["ACTIVE", "ERROR"])
seen["status"] = inst.status
seen["instances"] = [i.name for i in trove.instances.list()]

trove.databases.create(inst.id, [{"name": "d2"}])
seen["databases"] = sorted(d.name for d in trove.databases.list(inst.id))
trove.users.create(inst.id, [{"name": "u2", "password": "Pw-u2-12345", "databases": [{"name": "d2"}]}])
seen["users"] = sorted(u.name for u in trove.users.list(inst.id))
seen["user"] = [d["name"] for d in trove.users.get(inst.id, "u2").databases]
trove.users.delete(inst.id, "u2")
trove.databases.delete(inst.id, "d2")
seen["after_delete"] = [sorted(d.name for d in trove.databases.list(inst.id)),
                        sorted(u.name for u in trove.users.list(inst.id))]

root_user, root_password = trove.root.create(inst.id)
seen["root"] = [root_user, len(root_password) >= 16, trove.root.is_root_enabled(inst.id).rootEnabled]
trove.root.delete(inst.id)
seen["root_after"] = trove.root.is_root_enabled(inst.id).rootEnabled

group = trove.configurations.create(
    "pycfg", json.dumps({"max_connections": 222}), datastore="mariadb", datastore_version="10.11")
seen["configurations"] = [g.name for g in trove.configurations.list()]
trove.instances.update(inst.id, configuration=group.id)
seen["attached"] = trove.configurations.get(group.id).instance_count
wait(lambda: trove.instances.get(inst.id), ["ACTIVE"])
trove.instances.update(inst.id, remove_configuration=True)
deadline = time.time() + 30
while trove.configurations.get(group.id).instance_count != 0:
    if time.time() > deadline:
        raise SystemExit("still attached")
    time.sleep(0.3)
trove.configurations.delete(group.id)

trove.instances.restart(inst.id)
wait(lambda: trove.instances.get(inst.id), ["ACTIVE"])
backup = trove.backups.create("pybk", inst.id, description="nightly")
backup = wait(lambda: trove.backups.get(backup.id), ["COMPLETED", "FAILED"])
seen["backup"] = [backup.status, [b.name for b in trove.backups.list()]]
wait(lambda: trove.instances.get(inst.id), ["ACTIVE"])
trove.backups.delete(backup.id)

trove.instances.delete(inst.id)
deadline = time.time() + 60
while trove.instances.list():
    if time.time() > deadline:
        raise SystemExit("instance not deleted")
    time.sleep(0.3)
seen["deleted"] = True
print(json.dumps(seen))
