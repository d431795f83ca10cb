//! `postgresql.conf` and `pg_hba.conf`, kept in the instance's conf dir
//! (not in the data dir, which backups and replicas copy).

use super::paths::Paths;
use coffer_strategy::InstanceContext;

/// Memory settings for a flavor's RAM, in MB.
pub struct Memory {
    pub shared_buffers_mb: i64,
    pub effective_cache_mb: i64,
    pub work_mem_mb: i64,
    pub maintenance_mb: i64,
    pub max_connections: i64,
}

impl Memory {
    pub fn for_ram(ram_mb: i64) -> Self {
        let ram = ram_mb.max(128);
        Memory {
            shared_buffers_mb: ram / 4,
            effective_cache_mb: ram * 3 / 4,
            work_mem_mb: (ram / 128).clamp(1, 64),
            maintenance_mb: (ram / 16).clamp(16, 1024),
            max_connections: (ram / 512 * 100).clamp(50, 500),
        }
    }
}

/// Single-quoted for a config file (quotes doubled).
fn q(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

pub fn render(ctx: &InstanceContext, paths: &Paths) -> String {
    let m = Memory::for_ram(ctx.ram_mb);
    format!(
        "# Written by Coffer before every start; local edits are overwritten.\n\
         listen_addresses = {ip}\nport = {port}\nunix_socket_directories = {run}\n\
         hba_file = {hba}\nident_file = {ident}\n\
         password_encryption = 'scram-sha-256'\nlogging_collector = off\n\
         # Sized for {ram} MB of RAM.\n\
         shared_buffers = {sb}MB\neffective_cache_size = {ec}MB\nwork_mem = {wm}MB\n\
         maintenance_work_mem = {mm}MB\nmax_connections = {mc}\n",
        ip = q(&ctx.ip.to_string()),
        port = ctx.port,
        run = q(&paths.run_dir.to_string_lossy()),
        hba = q(&paths.hba.to_string_lossy()),
        ident = q(&paths.ident.to_string_lossy()),
        ram = ctx.ram_mb,
        sb = m.shared_buffers_mb,
        ec = m.effective_cache_mb,
        wm = m.work_mem_mb,
        mm = m.maintenance_mb,
        mc = m.max_connections,
    )
}

/// Who may log in: everyone by password; the agent's account only over
/// the socket. Every loopback client arrives from 127.0.0.1.
pub const HBA: &str = "# Written by Coffer.\n\
local all all scram-sha-256\n\
host all os_admin 0.0.0.0/0 reject\n\
host all all 127.0.0.0/8 scram-sha-256\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let m = Memory::for_ram(512);
        assert_eq!((m.shared_buffers_mb, m.max_connections), (128, 100));
        let m = Memory::for_ram(2048);
        assert_eq!(
            (m.shared_buffers_mb, m.effective_cache_mb, m.max_connections),
            (512, 1536, 400)
        );
        assert_eq!(q("a'b"), "'a''b'");
        assert!(HBA.contains("os_admin 0.0.0.0/0 reject"));
    }
}
