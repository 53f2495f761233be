//! Who each roster person is at each target, when the roster does not say it directly.
//!
//! A target may know people by an id the roster lacks: Feishu's user id, when the roster only
//! has e-mail addresses or mobile numbers ([`targets::identity_for`] says who needs a lookup).
//! Before planning, [`resolve`] asks each target that can look people up
//! ([`crate::targets::Abilities::lookup_batch`]) about the contacts it has no fresh answer for,
//! in batches, through the target's lane (rate limit, retries, a fatal answer stops the
//! target), and caches every answer in the state DB with its time; an answer is asked again
//! after the target's configured age ([`crate::config::IdCache`]). [`Directory`] is that cache
//! as planning reads it, without the network, so `plan` shows what `sync` will send.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::lane::{Lane, Purpose, Retried};
use crate::reason::{Finding, ReasonCode};
use crate::roster::{Person, Row};
use crate::store::{IdStatus, IdentityRecord, Store, StoreError};
use crate::targets::{self, Contact, Failure, Identity, Lookup};

/// The cached answers of every target, as planning reads them.
#[derive(Debug, Default, Clone)]
pub struct Directory {
    /// Answers valid under the current settings, by target, then contact key.
    answers: HashMap<String, HashMap<String, IdentityRecord>>,
}

impl Directory {
    /// Reads the cached answers of `targets` that are valid under the current settings (an
    /// answer given for another app or id type is not used). Stale answers are used too: they
    /// are the best knowledge until `sync` asks again.
    pub async fn load(
        store: &Store,
        config: &Config,
        targets: &[String],
    ) -> Result<Directory, StoreError> {
        let mut answers = HashMap::new();
        for target in targets {
            let Some(cache) = config.id_cache(target) else {
                continue;
            };
            let mut valid = store.identities(target).await?;
            valid.retain(|_, r| r.namespace == cache.namespace);
            answers.insert(target.clone(), valid);
        }
        Ok(Directory { answers })
    }

    /// The id `target` knows `person` by; `Ok(None)` when it must still be looked up; a
    /// finding when it cannot be sent there (a bad id, a contact nobody has, a resigned user).
    pub fn user_id(
        &self,
        config: &Config,
        target: &str,
        person: &Person,
    ) -> Result<Option<String>, Finding> {
        let contact = match targets::identity_for(config, target, person) {
            Err(message) => return Err(Finding::new(ReasonCode::BadTargetId, message)),
            Ok(Identity::Id(id)) => return Ok(Some(id)),
            Ok(Identity::Contact(c)) => c,
        };
        let Some(answer) = self.answers.get(target).and_then(|a| a.get(&contact.key())) else {
            return Ok(None);
        };
        let asked = answer.resolved_at.get(..10).unwrap_or(&answer.resolved_at);
        match (answer.status, &answer.user_id) {
            (IdStatus::Found, Some(id)) if !id.is_empty() => Ok(Some(id.clone())),
            (IdStatus::Found, _) => Ok(None),
            (IdStatus::NotFound, _) => Err(Finding::new(
                ReasonCode::ContactNotFound,
                format!("no {target} user the app can see has the {contact} (asked {asked})"),
            )),
            (IdStatus::Resigned, _) => Err(Finding::new(
                ReasonCode::UserResigned,
                format!(
                    "the {contact} belongs to a {target} user who has resigned (asked {asked})"
                ),
            )),
        }
    }
}

/// Splits contacts into requests of at most `per_kind` e-mail addresses and at most `per_kind`
/// mobile numbers each (Feishu takes up to 50 of each in one call); each kind keeps its order.
pub fn batches(contacts: &[Contact], per_kind: usize) -> Vec<Vec<Contact>> {
    let per_kind = per_kind.max(1);
    let (emails, mobiles): (Vec<&Contact>, Vec<&Contact>) = contacts
        .iter()
        .partition(|c| matches!(c, Contact::Email(_)));
    let emails: Vec<&[&Contact]> = emails.chunks(per_kind).collect();
    let mobiles: Vec<&[&Contact]> = mobiles.chunks(per_kind).collect();
    (0..emails.len().max(mobiles.len()))
        .map(|i| {
            let e = emails.get(i).copied().unwrap_or_default();
            let m = mobiles.get(i).copied().unwrap_or_default();
            e.iter().chain(m).map(|c| (*c).clone()).collect()
        })
        .collect()
}

/// True when an answer given at `resolved_at` (RFC 3339) is due to be asked again at `now`.
/// An unreadable time is due; a time in the future (a clock set back) counts as just now.
pub fn is_due(resolved_at: &str, now: SystemTime, max_age: Duration) -> bool {
    match humantime::parse_rfc3339(resolved_at) {
        Ok(at) => now.duration_since(at).unwrap_or_default() >= max_age,
        Err(_) => true,
    }
}

/// What [`resolve`] could not find out this run.
#[derive(Debug, Default)]
pub struct Unresolved {
    /// People whose contact the target could not be asked about (the request failed after its
    /// retries), by (target, person id), with the failure.
    pub failed: HashMap<(String, String), Failure>,
    /// Contacts asked about this run, by target.
    pub asked: HashMap<String, usize>,
}

/// Asks every lane's target that can look people up about the roster's contacts that have no
/// fresh answer in the cache, and caches the answers (each batch as it arrives, so an
/// interrupted run keeps what it learned).
pub(crate) async fn resolve(
    config: &Config,
    store: &Store,
    lanes: &[Arc<Lane>],
    rows: &[Row],
    stop: &CancellationToken,
) -> Result<Unresolved, StoreError> {
    let mut unresolved = Unresolved::default();
    for lane in lanes {
        let name = lane.name();
        let per_kind = lane.target.abilities().lookup_batch;
        let Some(cache) = config.id_cache(name) else {
            continue;
        };
        if per_kind == 0 || lane.stopped.is_cancelled() {
            continue;
        }
        let cached = store.identities(name).await?;
        let now = SystemTime::now();
        let mut wanted: BTreeMap<Contact, Vec<String>> = BTreeMap::new();
        for row in rows.iter().filter(|r| r.finding.is_none()) {
            let Ok(Identity::Contact(contact)) = targets::identity_for(config, name, &row.person)
            else {
                continue;
            };
            let fresh = cached.get(&contact.key()).is_some_and(|r| {
                r.namespace == cache.namespace && !is_due(&r.resolved_at, now, cache.max_age)
            });
            if !fresh {
                wanted
                    .entry(contact)
                    .or_default()
                    .push(row.person.id.clone());
            }
        }
        if wanted.is_empty() {
            continue;
        }
        let contacts: Vec<Contact> = wanted.keys().cloned().collect();
        tracing::info!(
            target = name,
            "{name}: looking up {} id(s) by e-mail or mobile",
            contacts.len()
        );
        unresolved.asked.insert(name.to_string(), contacts.len());
        let jobs = batches(&contacts, per_kind)
            .into_iter()
            .map(|batch| async move {
                let outcome = lane
                    .with_retries_for(Purpose::Check, stop, || async {
                        Ok(lane.target.lookup_ids(&batch).await)
                    })
                    .await;
                (batch, outcome)
            });
        let mut answers = futures::stream::iter(jobs).buffer_unordered(lane.concurrency);
        while let Some((batch, outcome)) = answers.next().await {
            match outcome? {
                Retried::Done(found) => {
                    let records = records_for(name, &cache.namespace, &batch, &found);
                    store.save_identities(&records).await?;
                }
                Retried::Failed(f) => {
                    for contact in &batch {
                        for person in &wanted[contact] {
                            unresolved
                                .failed
                                .insert((name.to_string(), person.clone()), f.clone());
                        }
                    }
                }
                Retried::Stopped { .. } => {}
            }
        }
    }
    Ok(unresolved)
}

/// The cache rows for one answered batch; a contact the answer leaves out counts as not found.
fn records_for(
    target: &str,
    namespace: &str,
    batch: &[Contact],
    answers: &[(Contact, Lookup)],
) -> Vec<IdentityRecord> {
    let at = crate::store::now();
    batch
        .iter()
        .map(|contact| {
            let answer = answers
                .iter()
                .find(|(c, _)| c == contact)
                .map_or(&Lookup::NotFound, |(_, l)| l);
            let (status, user_id) = match answer {
                Lookup::Found(id) => (IdStatus::Found, Some(id.clone())),
                Lookup::NotFound => (IdStatus::NotFound, None),
                Lookup::Resigned => (IdStatus::Resigned, None),
            };
            IdentityRecord {
                target: target.to_string(),
                contact: contact.key(),
                namespace: namespace.to_string(),
                status,
                user_id,
                resolved_at: at.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emails(n: usize) -> Vec<Contact> {
        (0..n).map(|i| Contact::Email(format!("e{i}@x"))).collect()
    }

    fn mobiles(n: usize) -> Vec<Contact> {
        (0..n).map(|i| Contact::Mobile(format!("{i}"))).collect()
    }

    /// (e-mails, mobiles) per batch.
    fn shape(contacts: &[Contact], per_kind: usize) -> Vec<(usize, usize)> {
        batches(contacts, per_kind)
            .iter()
            .map(|b| {
                let e = b.iter().filter(|c| matches!(c, Contact::Email(_))).count();
                (e, b.len() - e)
            })
            .collect()
    }

    #[test]
    fn batches_hold_at_most_fifty_of_each_kind() {
        let both = |e, m| [emails(e), mobiles(m)].concat();
        let check = |contacts: Vec<Contact>, want: &[(usize, usize)]| {
            assert_eq!(shape(&contacts, 50), want, "{} contacts", contacts.len());
            let mut flat: Vec<Contact> = batches(&contacts, 50).concat();
            let mut all = contacts.clone();
            flat.sort();
            all.sort();
            assert_eq!(flat, all, "every contact is asked once");
        };
        check(vec![], &[]);
        check(emails(1), &[(1, 0)]);
        check(emails(50), &[(50, 0)]);
        check(emails(51), &[(50, 0), (1, 0)]);
        check(mobiles(120), &[(0, 50), (0, 50), (0, 20)]);
        check(both(50, 50), &[(50, 50)]);
        check(both(101, 30), &[(50, 30), (50, 0), (1, 0)]);
    }

    #[test]
    fn answers_are_due_after_their_age() {
        let at = "2026-03-01T00:00:00Z";
        let t = |s: &str| humantime::parse_rfc3339(s).unwrap();
        let day = Duration::from_secs(86_400);
        let cases = [
            (at, "2026-03-01T12:00:00Z", day, false),
            (at, "2026-03-02T00:00:00Z", day, true),
            (at, "2026-03-09T00:00:00Z", 7 * day, true),
            (at, "2026-03-01T00:00:00Z", Duration::ZERO, true),
            (at, "2026-02-01T00:00:00Z", day, false),
            ("not a time", "2026-03-01T00:00:00Z", day, true),
        ];
        for (resolved, now, age, due) in cases {
            assert_eq!(is_due(resolved, t(now), age), due, "{resolved} at {now}");
        }
    }

    fn record(status: IdStatus, user_id: Option<&str>) -> IdentityRecord {
        IdentityRecord {
            target: "feishu".into(),
            contact: "email:a@b.c".into(),
            namespace: "ns".into(),
            status,
            user_id: user_id.map(Into::into),
            resolved_at: "2026-03-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn cached_answers_decide_the_id_or_why_there_is_none() {
        let person = Person {
            id: "E1".into(),
            email: Some("A@b.c".into()),
            ..Person::default()
        };
        let directory = |r: Option<IdentityRecord>| Directory {
            answers: HashMap::from([(
                "feishu".to_string(),
                r.into_iter().map(|r| (r.contact.clone(), r)).collect(),
            )]),
        };
        let config = Config::parse(
            crate::config::EXAMPLE,
            std::path::Path::new("/etc/facesync/config.toml"),
        )
        .unwrap();
        let code = |d: &Directory| d.user_id(&config, "feishu", &person).map_err(|f| f.code);
        assert_eq!(code(&directory(None)), Ok(None));
        assert_eq!(
            code(&directory(Some(record(IdStatus::Found, Some("ou_1"))))),
            Ok(Some("ou_1".into()))
        );
        assert_eq!(
            code(&directory(Some(record(IdStatus::NotFound, None)))),
            Err(ReasonCode::ContactNotFound)
        );
        assert_eq!(
            code(&directory(Some(record(IdStatus::Resigned, None)))),
            Err(ReasonCode::UserResigned)
        );
        let message = directory(Some(record(IdStatus::NotFound, None)))
            .user_id(&config, "feishu", &person)
            .unwrap_err()
            .message;
        assert!(message.contains("e-mail a@b.c"), "{message}");
        // Targets that take roster ids never look at the cache.
        assert_eq!(
            directory(None).user_id(&config, "vzicloud", &person),
            Ok(Some("E1".into()))
        );
    }

    #[test]
    fn contacts_left_out_of_an_answer_are_not_found() {
        let batch = [Contact::Email("a@x".into()), Contact::Mobile("1".into())];
        let answers = [(Contact::Mobile("1".into()), Lookup::Found("ou_1".into()))];
        let records = records_for("feishu", "ns", &batch, &answers);
        let got: Vec<(&str, IdStatus, Option<&str>)> = records
            .iter()
            .map(|r| (r.contact.as_str(), r.status, r.user_id.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("email:a@x", IdStatus::NotFound, None),
                ("mobile:1", IdStatus::Found, Some("ou_1")),
            ]
        );
    }
}
