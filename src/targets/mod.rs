//! The clouds faces are delivered to. Each target is one module behind one interface; this
//! file is the registry that names them.

pub mod vzicloud;

use crate::config::is_vzicloud_id;
use crate::roster::Person;

/// Every target this build knows, in the order reports list them.
pub const NAMES: &[&str] = &["feishu", "vzicloud"];

/// The id `target` knows `person` by, or why the person's id cannot be sent there.
pub fn user_id_for(target: &str, person: &Person) -> Result<String, String> {
    match target {
        "feishu" => Ok(person
            .feishu_user_id
            .clone()
            .unwrap_or_else(|| person.id.clone())),
        "vzicloud" => {
            let id = person.vzicloud_user_id.as_deref().unwrap_or(&person.id);
            if is_vzicloud_id(id) {
                Ok(id.to_string())
            } else {
                Err(format!(
                    "VziCloud user id `{id}` is not 1 to 48 letters, digits or underscores: \
                     fix it or map it with roster.columns.vzicloud_user_id"
                ))
            }
        }
        other => Err(format!("unknown target `{other}`")),
    }
}
