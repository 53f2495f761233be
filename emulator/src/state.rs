//! What the emulated clouds hold (tokens, faces, groups, users; the Hikvision terminals'
//! state is in [`crate::hikvision`]) and what they have seen
//! (requests, refusals, faults), behind short-lived locks that are never held across an await.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::time::Instant;

use super::EmulatorConfig;
use super::faces::{FaceLocation, Rect};
use super::faults::{Api, Limits};
use super::hikvision::Terminals;

/// Everything the server's handlers share.
pub(crate) struct Shared {
    pub(crate) config: EmulatorConfig,
    pub(crate) feishu: Mutex<FeishuState>,
    pub(crate) vzicloud: Mutex<VziCloudState>,
    /// The Hikvision terminals, each behind its own lock.
    pub(crate) hikvision: Terminals,
    pub(crate) limits: Limits,
    counters: Mutex<Counters>,
    /// `users` as a set, for lookups.
    users: Option<HashSet<String>>,
    absent: HashSet<String>,
    /// Directory users who resigned: in no access group.
    resigned: HashSet<String>,
    ids: Mutex<HashMap<&'static str, u64>>,
}

#[derive(Default)]
struct Counters {
    requests: BTreeMap<String, u64>,
    refusals: BTreeMap<String, BTreeMap<String, u64>>,
    faults: FaultStats,
    tokens_issued: u64,
}

/// Feishu: issued tokens and the faces users hold.
#[derive(Default)]
pub(crate) struct FeishuState {
    /// Every token still remembered, with the moment it expires.
    pub(crate) tokens: HashMap<String, Instant>,
    /// The token handed out last, returned again while enough of it remains.
    pub(crate) latest: Option<String>,
    /// By `user_id`.
    pub(crate) faces: BTreeMap<String, FeishuFace>,
}

/// A face as Feishu stores it.
#[derive(Clone)]
pub(crate) struct FeishuFace {
    pub(crate) bytes: Vec<u8>,
    /// `jpg` or `png`.
    pub(crate) file_type: &'static str,
    pub(crate) file_name: String,
    /// Where the face is, when face checks are on.
    pub(crate) face: Option<Rect>,
}

/// VziCloud: groups of users holding faces.
#[derive(Default)]
pub(crate) struct VziCloudState {
    pub(crate) groups: BTreeMap<String, Group>,
}

pub(crate) struct Group {
    pub(crate) name: String,
    pub(crate) remark: String,
    pub(crate) create_time: u64,
    pub(crate) users: BTreeMap<String, VziUser>,
}

pub(crate) struct VziUser {
    pub(crate) name: String,
    pub(crate) info: String,
    pub(crate) remark: String,
    pub(crate) create_time: u64,
    pub(crate) faces: Vec<VziCloudFace>,
}

/// A face a VziCloud user holds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VziCloudFace {
    pub face_id: String,
    /// `jpeg`, `png`, ...
    pub format: String,
    /// Where the face is in the uploaded image (the whole image when face checks are off).
    pub location: FaceLocation,
    pub create_time: u64,
    /// The decoded bytes of the uploaded image.
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

/// What the emulator has seen and holds; also served as JSON at `/__emulator/stats`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Requests by kind (`feishu.face_upload`, `vzicloud.face_update`, `hikvision.face_record`
    /// summed over terminals, ...), refused or not.
    pub requests: BTreeMap<String, u64>,
    /// Refusals by kind, then by vendor code (as a string: `"1490101"`, `"1004"`; Hikvision's
    /// decimal `errorCode`, and `"401"` for a digest refusal).
    pub refusals: BTreeMap<String, BTreeMap<String, u64>>,
    /// Injected faults.
    pub faults: FaultStats,
    /// Feishu tenant access tokens issued (a token returned again is not counted).
    pub tokens_issued: u64,
    /// Feishu users (by `user_id`) holding a face, with the face's size in bytes.
    pub feishu_faces: BTreeMap<String, usize>,
    /// VziCloud groups, their users, and the face ids each holds.
    pub vzicloud: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

/// Faults the knobs injected.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FaultStats {
    /// Connections closed without an answer.
    pub dropped: u64,
    /// Server errors answered (HTTP 500 / 503).
    pub server_errors: u64,
    /// Requests answered after the added latency.
    pub delayed: u64,
}

impl Stats {
    /// Requests of one kind.
    pub fn requests_of(&self, kind: &str) -> u64 {
        self.requests.get(kind).copied().unwrap_or(0)
    }

    /// Refusals with `code`, over every kind.
    pub fn refusals_with(&self, code: i64) -> u64 {
        let code = code.to_string();
        self.refusals
            .values()
            .filter_map(|by_code| by_code.get(&code))
            .sum()
    }

    /// Refusals of one kind with `code`.
    pub fn refusals_of(&self, kind: &str, code: i64) -> u64 {
        self.refusals
            .get(kind)
            .and_then(|by_code| by_code.get(&code.to_string()))
            .copied()
            .unwrap_or(0)
    }
}

/// Now on a clock `offset` seconds off the machine's: the emulator's own notion of now (the
/// `clock_offset` knob).
pub(crate) fn skewed(offset: i64) -> std::time::SystemTime {
    let now = std::time::SystemTime::now();
    let by = std::time::Duration::from_secs(offset.unsigned_abs());
    if offset >= 0 {
        now + by
    } else {
        now.checked_sub(by).unwrap_or(std::time::UNIX_EPOCH)
    }
}

/// Seconds since the Unix epoch on a clock `offset` seconds off the machine's, as VziCloud's
/// `create_time` and `expires` count them.
pub(crate) fn unix_now(offset: i64) -> u64 {
    skewed(offset)
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Shared {
    /// Now, on the emulator's clock (`clock_offset` off the machine's).
    pub(crate) fn now(&self) -> std::time::SystemTime {
        skewed(self.config.clock_offset)
    }

    /// [`Shared::now`] in Unix seconds.
    pub(crate) fn unix_now(&self) -> u64 {
        unix_now(self.config.clock_offset)
    }

    pub(crate) fn new(config: EmulatorConfig) -> Self {
        let mut vzicloud = VziCloudState::default();
        let now = unix_now(config.clock_offset);
        for g in &config.vzicloud_groups {
            vzicloud.groups.insert(
                g.clone(),
                Group {
                    name: String::new(),
                    remark: String::new(),
                    create_time: now,
                    users: BTreeMap::new(),
                },
            );
        }
        Self {
            users: config.users.as_ref().map(|u| u.iter().cloned().collect()),
            absent: config.absent_users.iter().cloned().collect(),
            resigned: config
                .directory
                .iter()
                .filter(|u| u.resigned)
                .map(|u| u.user_id.clone())
                .collect(),
            feishu: Mutex::new(FeishuState::default()),
            vzicloud: Mutex::new(vzicloud),
            hikvision: Terminals::new(&config.hikvision, config.seed),
            limits: Limits::default(),
            counters: Mutex::new(Counters::default()),
            ids: Mutex::new(HashMap::new()),
            config,
        }
    }

    /// A fresh id for `purpose`: 32 lower-case hex digits drawn from the seed and a per-purpose
    /// counter, so ids are reproducible and one kind of id never shifts another.
    pub(crate) fn next_id(&self, purpose: &'static str) -> String {
        let n = {
            let mut ids = lock(&self.ids);
            let n = ids.entry(purpose).or_insert(0);
            *n += 1;
            *n
        };
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.config.seed.to_le_bytes());
        hasher.update(purpose.as_bytes());
        hasher.update(&n.to_le_bytes());
        hasher.finalize().to_hex()[..32].to_string()
    }

    /// Whether a Feishu user (by `user_id`) exists.
    pub(crate) fn feishu_user_exists(&self, user_id: &str) -> bool {
        !self.absent.contains(user_id)
            && !self.resigned.contains(user_id)
            && self.users.as_ref().is_none_or(|u| u.contains(user_id))
    }

    /// The Feishu users a user list shows, sorted: the configured ones, or (when everyone
    /// exists) those holding a face.
    pub(crate) fn feishu_listed_users(&self) -> Vec<String> {
        let mut listed: Vec<String> = match &self.users {
            Some(users) => users.iter().cloned().collect(),
            None => lock(&self.feishu).faces.keys().cloned().collect(),
        };
        listed.retain(|u| !self.absent.contains(u) && !self.resigned.contains(u));
        listed.sort();
        listed.dedup();
        listed
    }

    pub(crate) fn count_request(&self, api: Api) {
        *lock(&self.counters)
            .requests
            .entry(api.name().to_string())
            .or_insert(0) += 1;
    }

    pub(crate) fn count_refusal(&self, api: Api, code: i64) {
        *lock(&self.counters)
            .refusals
            .entry(api.name().to_string())
            .or_default()
            .entry(code.to_string())
            .or_insert(0) += 1;
    }

    pub(crate) fn count_fault(&self, f: impl FnOnce(&mut FaultStats)) {
        f(&mut lock(&self.counters).faults);
    }

    pub(crate) fn count_token(&self) {
        lock(&self.counters).tokens_issued += 1;
    }

    pub(crate) fn stats(&self) -> Stats {
        let counters = lock(&self.counters);
        let feishu_faces = lock(&self.feishu)
            .faces
            .iter()
            .map(|(user, face)| (user.clone(), face.bytes.len()))
            .collect();
        let vzicloud = lock(&self.vzicloud)
            .groups
            .iter()
            .map(|(gid, group)| {
                let users = group
                    .users
                    .iter()
                    .map(|(uid, user)| {
                        (
                            uid.clone(),
                            user.faces.iter().map(|f| f.face_id.clone()).collect(),
                        )
                    })
                    .collect();
                (gid.clone(), users)
            })
            .collect();
        Stats {
            requests: counters.requests.clone(),
            refusals: counters.refusals.clone(),
            faults: counters.faults.clone(),
            tokens_issued: counters.tokens_issued,
            feishu_faces,
            vzicloud,
        }
    }

    pub(crate) fn feishu_face(&self, user_id: &str) -> Option<Vec<u8>> {
        lock(&self.feishu)
            .faces
            .get(user_id)
            .map(|f| f.bytes.clone())
    }

    pub(crate) fn vzicloud_users(&self, group_id: &str) -> Vec<String> {
        lock(&self.vzicloud)
            .groups
            .get(group_id)
            .map(|g| g.users.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn vzicloud_faces(&self, group_id: &str, user_id: &str) -> Vec<VziCloudFace> {
        lock(&self.vzicloud)
            .groups
            .get(group_id)
            .and_then(|g| g.users.get(user_id))
            .map(|u| u.faces.clone())
            .unwrap_or_default()
    }

    pub(crate) fn vzicloud_groups(&self) -> Vec<String> {
        lock(&self.vzicloud).groups.keys().cloned().collect()
    }
}

/// Locks a mutex; a panic in another handler does not make the state unusable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counts requests in a sliding window, per key: the rate limits of both clouds.
#[derive(Default)]
pub(crate) struct Windows {
    log: Mutex<HashMap<&'static str, std::collections::VecDeque<Instant>>>,
}

impl Windows {
    /// Admits a request under `key` if fewer than `limit` were admitted in the last `window`;
    /// otherwise the time until the oldest of them leaves the window.
    pub(crate) fn admit(
        &self,
        key: &'static str,
        limit: u32,
        window: std::time::Duration,
    ) -> Result<(), std::time::Duration> {
        let now = Instant::now();
        let mut all = lock(&self.log);
        let log = all.entry(key).or_default();
        while log
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            log.pop_front();
        }
        if log.len() >= limit as usize {
            let oldest = log.front().copied().unwrap_or(now);
            return Err(window.saturating_sub(now.duration_since(oldest)));
        }
        log.push_back(now);
        Ok(())
    }
}

/// A counter of served requests against a total quota.
#[derive(Default)]
pub(crate) struct Quota {
    used: AtomicU64,
}

impl Quota {
    /// Takes one request from the quota; false when it is used up.
    pub(crate) fn take(&self, quota: u64) -> bool {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                (used < quota).then_some(used + 1)
            })
            .is_ok()
    }
}
