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

use coffer_model::InstanceId;

pub const CONTROL_EXCHANGE: &str = "coffer.ctl";
pub const CONDUCTOR_EXCHANGE: &str = "coffer.conductor";
pub const TASKMANAGER_QUEUE: &str = "ctl.taskmanager";
pub const TASKMANAGER_KEY: &str = "taskmanager";
pub const CONDUCTOR_QUEUE: &str = "ctl.conductor";
pub const NEWS_BINDING: &str = "agent.*.conductor";

/// The broker user of one instance's agent.
pub fn agent_user(id: InstanceId) -> String {
    format!("agent-{id}")
}

/// The instance whose agent `user` is, if it is an agent user.
pub fn agent_of_user(user: &str) -> Option<InstanceId> {
    user.strip_prefix("agent-")?.parse().ok()
}

/// The queue of one agent (the same string as its bus topic).
pub fn agent_queue(id: InstanceId) -> String {
    crate::agent_topic(id)
}

/// Routing key of an agent's news for the conductor.
pub fn news_key(id: InstanceId) -> String {
    format!("agent.{id}.conductor")
}

/// Routing key of an agent's reply to control-plane process `process`.
pub fn reply_key(id: InstanceId, process: &str) -> String {
    format!("agent.{id}.reply.{process}")
}

/// The reply queue of one control-plane process, and its binding.
pub fn reply_queue(process: &str) -> String {
    format!("ctl.reply.{process}")
}

pub fn reply_binding(process: &str) -> String {
    format!("agent.*.reply.{process}")
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

/// What an agent may do, as RabbitMQ permission regexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentPermissions {
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

pub fn agent_permissions(id: InstanceId) -> AgentPermissions {
    let queue = agent_queue(id);
    AgentPermissions {
        configure: exactly(&queue),
        write: exactly(CONDUCTOR_EXCHANGE),
        read: exactly(&queue),
        topic_exchange: CONDUCTOR_EXCHANGE,
        topic_write: format!("^{}\\.", escape(&format!("agent.{id}"))),
        topic_read: "^$".into(),
    }
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
}
