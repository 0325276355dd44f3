//! Who may do what in the console and the API (issue 3, point 1).

use serde::Serialize;

/// A user's or an API token's role. Each role may do what the ones below it
/// may, and more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reports only.
    Viewer,
    /// Reports, live views and exports.
    Supervisor,
    /// Everything, users and settings included.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Supervisor, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may do what `needed` may.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}; use admin, supervisor or viewer"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_rank() {
        assert_eq!("supervisor".parse(), Ok(Role::Supervisor));
        assert!("root".parse::<Role>().is_err());
        assert!(Role::Admin.allows(Role::Supervisor));
        assert!(Role::Supervisor.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Supervisor));
    }
}
