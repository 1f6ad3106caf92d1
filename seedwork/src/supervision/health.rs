use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

/// The state of one part, as last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartStatus {
    /// Whether the part is doing its job.
    pub up: bool,
    /// What is wrong (when down) or worth knowing (when up); empty when there is nothing to say.
    pub detail: String,
    /// When the part last changed between up and down.
    pub since: SystemTime,
}

/// Every part's status, and whether all are up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// The parts by name.
    pub parts: BTreeMap<String, PartStatus>,
}

impl HealthReport {
    /// True when every part is up (and when there are none).
    pub fn up(&self) -> bool {
        self.parts.values().all(|part| part.up)
    }

    /// The names of the parts that are down.
    pub fn down(&self) -> Vec<&str> {
        self.parts
            .iter()
            .filter(|(_, part)| !part.up)
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

/// The register of a process's parts and their status. Cheap to clone; all clones share one
/// register.
///
/// ```
/// use seedwork::supervision::Health;
///
/// let health = Health::new();
/// let relay = health.part("relay");
/// assert!(!health.report().up(), "a part starts down until it reports up");
/// relay.up();
/// assert!(health.report().up());
/// relay.down("broker: connection refused");
/// assert_eq!(health.report().down(), ["relay"]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Health {
    parts: Arc<Mutex<BTreeMap<String, PartStatus>>>,
}

impl Health {
    /// An empty register.
    pub fn new() -> Self {
        Health::default()
    }

    /// Registers the part `name` (down, "starting", until it reports up) and returns its
    /// handle. Registering a name again returns a handle to the same part.
    pub fn part(&self, name: impl Into<String>) -> HealthPart {
        let name = name.into();
        self.lock()
            .entry(name.clone())
            .or_insert_with(|| PartStatus {
                up: false,
                detail: "starting".into(),
                since: SystemTime::now(),
            });
        HealthPart {
            health: self.clone(),
            name: Arc::from(name),
        }
    }

    /// A snapshot of every part's status.
    pub fn report(&self) -> HealthReport {
        HealthReport {
            parts: self.lock().clone(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, PartStatus>> {
        // A panic while holding the lock leaves the map consistent (every write is one insert).
        self.parts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, name: &str, up: bool, detail: String) {
        let mut parts = self.lock();
        let since = match parts.get(name) {
            Some(previous) if previous.up == up => previous.since,
            _ => SystemTime::now(),
        };
        parts.insert(name.to_string(), PartStatus { up, detail, since });
    }
}

/// One part's handle for reporting its status. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HealthPart {
    health: Health,
    name: Arc<str>,
}

impl HealthPart {
    /// A handle on a register of its own, for a part nobody watches (its reports go nowhere
    /// anyone reads).
    pub fn detached(name: impl Into<String>) -> Self {
        Health::new().part(name)
    }

    /// The part's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reports the part up, with nothing to add.
    pub fn up(&self) {
        self.health.set(&self.name, true, String::new());
    }

    /// Reports the part up, with a detail (e.g. how far behind it is).
    pub fn up_with(&self, detail: impl Into<String>) {
        self.health.set(&self.name, true, detail.into());
    }

    /// Reports the part down, saying why.
    pub fn down(&self, why: impl Into<String>) {
        self.health.set(&self.name, false, why.into());
    }

    /// The part's last reported status.
    pub fn status(&self) -> Option<PartStatus> {
        self.health.lock().get(&*self.name).cloned()
    }
}
