//! Every name Coffer uses on the broker, in one place: exchanges, queues,
//! routing keys, agent user names and the permission patterns that confine
//! an agent (the layout verified on RabbitMQ 3.10 in the shared
//! COMPONENTS notes).
//!
//! - `coffer.ctl` (topic): routing key `taskmanager` -> queue `ctl.taskmanager`.
//! - `coffer.conductor` (topic): agents publish news with routing key
//!   `agent.<id>.conductor` -> queue `ctl.conductor`, and replies with
//!   `agent.<id>.reply.<process>` -> that control-plane process's own queue.
//! - queue `agent.<id>`: what the control plane sends one agent, through the
//!   default exchange. Only that agent may read it.
//! - queue `compute.<host>`: the same for the `coffer compute` daemon of one
//!   host, which replies with `compute.<host>.reply.<process>`.

use coffer_model::InstanceId;

pub const CONTROL_EXCHANGE: &str = "coffer.ctl";
pub const CONDUCTOR_EXCHANGE: &str = "coffer.conductor";
pub const TASKMANAGER_QUEUE: &str = "ctl.taskmanager";
pub const TASKMANAGER_KEY: &str = "taskmanager";
pub const CONDUCTOR_QUEUE: &str = "ctl.conductor";
pub const NEWS_BINDING: &str = "agent.*.conductor";

/// An endpoint the broker confines to its own queue and routing keys: an
/// instance's guest agent, or the `coffer compute` daemon of one host.
/// Everything it may touch starts with its prefix (`agent.<id>`,
/// `compute.<host>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    Agent(InstanceId),
    ComputeHost(String),
}

impl Peer {
    /// `agent.<id>` or `compute.<host>`: its queue, its bus topic, and
    /// the first part of every routing key it may publish with.
    pub fn prefix(&self) -> String {
        match self {
            Peer::Agent(id) => crate::agent_topic(*id),
            Peer::ComputeHost(host) => crate::compute_topic(host),
        }
    }

    /// Its broker login.
    pub fn user(&self) -> String {
        match self {
            Peer::Agent(id) => format!("agent-{id}"),
            Peer::ComputeHost(host) => format!("compute-{host}"),
        }
    }

    /// The peer whose login `user` is, if it is a confined one.
    pub fn of_user(user: &str) -> Option<Peer> {
        if let Some(id) = user.strip_prefix("agent-") {
            return id.parse().ok().map(Peer::Agent);
        }
        let host = user.strip_prefix("compute-")?;
        valid_host_name(host).then(|| Peer::ComputeHost(host.to_string()))
    }

    /// The peer listening on bus topic `topic`, if any.
    pub fn of_topic(topic: &str) -> Option<Peer> {
        if let Some(id) = topic.strip_prefix("agent.") {
            return id.parse().ok().map(Peer::Agent);
        }
        let host = topic.strip_prefix("compute.")?;
        valid_host_name(host).then(|| Peer::ComputeHost(host.to_string()))
    }

    /// Its queue (the same string as its bus topic).
    pub fn queue(&self) -> String {
        self.prefix()
    }

    /// Routing key of its reply to control-plane process `process`.
    pub fn reply_key(&self, process: &str) -> String {
        format!("{}.reply.{process}", self.prefix())
    }

    /// What it may do, as RabbitMQ permission regexes.
    pub fn permissions(&self) -> Permissions {
        let queue = self.queue();
        Permissions {
            configure: exactly(&queue),
            write: exactly(CONDUCTOR_EXCHANGE),
            read: exactly(&queue),
            topic_exchange: CONDUCTOR_EXCHANGE,
            topic_write: format!("^{}\\.", escape(&self.prefix())),
            topic_read: "^$".into(),
        }
    }
}

/// A compute host's name: lower-case letters, digits and dashes, 1 to 63
/// of them, not starting with a dash (it becomes part of queue names,
/// routing keys and a broker login).
pub fn valid_host_name(host: &str) -> bool {
    (1..=63).contains(&host.len())
        && !host.starts_with('-')
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The broker user of one instance's agent.
pub fn agent_user(id: InstanceId) -> String {
    Peer::Agent(id).user()
}

/// The instance whose agent `user` is, if it is an agent user.
pub fn agent_of_user(user: &str) -> Option<InstanceId> {
    match Peer::of_user(user)? {
        Peer::Agent(id) => Some(id),
        Peer::ComputeHost(_) => None,
    }
}

/// The queue of one agent (the same string as its bus topic).
pub fn agent_queue(id: InstanceId) -> String {
    Peer::Agent(id).queue()
}

/// Routing key of an agent's news for the conductor.
pub fn news_key(id: InstanceId) -> String {
    format!("agent.{id}.conductor")
}

/// Routing key of an agent's reply to control-plane process `process`.
pub fn reply_key(id: InstanceId, process: &str) -> String {
    Peer::Agent(id).reply_key(process)
}

/// The reply queue of one control-plane process, and its bindings (replies
/// of agents and of compute hosts).
pub fn reply_queue(process: &str) -> String {
    format!("ctl.reply.{process}")
}

pub fn reply_bindings(process: &str) -> [String; 2] {
    [
        format!("agent.*.reply.{process}"),
        format!("compute.*.reply.{process}"),
    ]
}

/// `^...$`-anchored regex of a literal name.
fn exactly(name: &str) -> String {
    format!("^{}$", escape(name))
}

/// Regex-escapes the characters of names Coffer makes (dots; ids are hex
/// and dashes).
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() && c != '-' && c != '_' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What a confined peer may do, as RabbitMQ permission regexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    /// configure / write / read on the vhost's resources.
    pub configure: String,
    pub write: String,
    pub read: String,
    /// Topic permission on the conductor exchange: routing keys it may
    /// publish with (its own prefix, dot-terminated so `ab` never matches
    /// `abc`) and may read (none).
    pub topic_exchange: &'static str,
    pub topic_write: String,
    pub topic_read: String,
}

pub fn agent_permissions(id: InstanceId) -> Permissions {
    Peer::Agent(id).permissions()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_names_and_permissions() {
        let id: InstanceId = "0b7c2a52-1f7e-4a4e-9d2b-6a1d3e5f7a90".parse().unwrap();
        assert_eq!(agent_of_user(&agent_user(id)), Some(id));
        assert_eq!(agent_of_user("coffer-ctl"), None);
        assert_eq!(agent_of_user("agent-nope"), None);
        let p = agent_permissions(id);
        assert_eq!(p.read, format!("^agent\\.{id}$"));
        assert_eq!(p.write, "^coffer\\.conductor$");
        assert_eq!(p.topic_write, format!("^agent\\.{id}\\."));
        assert!(news_key(id).starts_with(&format!("agent.{id}.")));
        assert!(reply_key(id, "p1").starts_with(&format!("agent.{id}.")));
    }

    #[test]
    fn compute_host_names_and_permissions() {
        let h = Peer::ComputeHost("rack1-h2".into());
        assert_eq!(h.user(), "compute-rack1-h2");
        assert_eq!(Peer::of_user(&h.user()), Some(h.clone()));
        assert_eq!(Peer::of_topic("compute.rack1-h2"), Some(h.clone()));
        assert_eq!(h.reply_key("p1"), "compute.rack1-h2.reply.p1");
        let p = h.permissions();
        assert_eq!(p.read, "^compute\\.rack1-h2$");
        assert_eq!(p.topic_write, "^compute\\.rack1-h2\\.");
        for bad in ["", "-a", "A", "a.b", "a*", "a#", "h_1", &"x".repeat(64)] {
            assert!(!valid_host_name(bad), "{bad:?}");
            assert_eq!(Peer::of_user(&format!("compute-{bad}")), None);
        }
        assert_eq!(agent_of_user("compute-h1"), None);
    }
}
