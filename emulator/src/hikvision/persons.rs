//! Person records (`UserInfo`, reference §3): the capabilities, Record (add), Modify (edit),
//! SetUp (upsert), Search with the searchID rules, and Delete (which removes faces too).

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::status::{self, Refused};
use super::{Call, HikvisionConfig, MAX_RESULTS, is_employee_no, object, paging, response_status};

/// The earliest and latest `Valid` times a terminal takes (`timeRangeBegin` / `End`).
const VALID_FROM: &str = "2000-01-01T00:00:00";
const VALID_TO: &str = "2037-12-31T23:59:59";

/// Which person write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Write {
    /// POST Record: a new person (an existing one: `employeeNoAlreadyExist`).
    Record,
    /// PUT Modify: an existing person (a missing one: `employeeNoNotExist`), the fields given
    /// replacing the stored ones.
    Modify,
    /// PUT SetUp: creates or replaces, when the knob `setup` offers it.
    SetUp,
}

/// `GET /ISAPI/AccessControl/UserInfo/capabilities?format=json`.
pub(super) fn capabilities(config: &HikvisionConfig) -> Value {
    let functions = if config.setup {
        "post,delete,put,get,setUp"
    } else {
        "post,delete,put,get"
    };
    json!({"UserInfo": {
        "supportFunction": {"@opt": functions},
        "maxRecordNum": config.max_persons,
        "employeeNo": {"@min": 1, "@max": 32},
        "name": {"@min": 1, "@max": config.name_max_bytes},
        "userType": {"@opt": "normal,visitor,blackList"},
        "Valid": {
            "enable": {"@opt": [true, false]},
            "beginTime": {"@min": 1, "@max": 32},
            "endTime": {"@min": 1, "@max": 32},
            "timeRangeBegin": VALID_FROM,
            "timeRangeEnd": VALID_TO,
            "timeType": {"@opt": "local,UTC"},
        },
        "doorRight": {"@min": 1, "@max": 1},
        "RightPlan": {"maxSize": 1, "doorNo": {"@min": 1, "@max": 1},
                      "planTemplateNo": {"@min": 1, "@max": 255}},
        "gender": {"@opt": "male,female,unknown"},
        "UserInfoSearchCond": {
            "searchID": {"@min": 1, "@max": 32},
            "maxResults": {"@min": 1, "@max": MAX_RESULTS},
            "EmployeeNoList": {"maxSize": MAX_RESULTS},
        },
        "UserInfoDelCond": {"EmployeeNoList": {"maxSize": MAX_RESULTS}},
    }})
}

/// Record, Modify or SetUp.
pub(super) fn write(at: &Call<'_>, write: Write, body: &Bytes) -> Result<Response, Refused> {
    let config = at.config();
    if write == Write::SetUp && !config.setup {
        return Err(Refused::new(status::NOT_SUPPORT, "setUp"));
    }
    let mut root = object(body)?;
    let info = match root.remove("UserInfo") {
        Some(Value::Object(info)) => info,
        Some(_) => return Err(Refused::bad("UserInfo")),
        None => return Err(Refused::lack("UserInfo")),
    };
    let employee_no = check(&info, config, write != Write::Modify)?;
    let mut t = at.state();
    let exists = t.persons.contains_key(&employee_no);
    match write {
        Write::Record if exists => {
            return Err(Refused::new(status::EMPLOYEE_EXISTS, "checkUser"));
        }
        Write::Modify if !exists => {
            return Err(Refused::new(status::EMPLOYEE_NOT_EXIST, "employeeNo"));
        }
        _ => {}
    }
    if !exists && t.persons.len() >= config.max_persons as usize {
        return Err(Refused::new(status::DEVICE_ERROR, "maxRecordNum"));
    }
    match (write, t.persons.get_mut(&employee_no)) {
        (Write::Modify, Some(stored)) => stored.extend(info),
        _ => {
            t.persons.insert(employee_no, info);
        }
    }
    Ok(status::ok(at.request_url))
}

/// Checks a `UserInfo` object; `full` (Record and SetUp) also needs `RightPlan`. The
/// employeeNo.
fn check(
    info: &Map<String, Value>,
    config: &HikvisionConfig,
    full: bool,
) -> Result<String, Refused> {
    let employee_no = super::string(info, "employeeNo", "employeeNo")?;
    if !is_employee_no(employee_no) {
        return Err(Refused::bad("employeeNo"));
    }
    if let Some(name) = info.get("name") {
        let name = name.as_str().ok_or_else(|| Refused::bad("name"))?;
        if name.is_empty() {
            return Err(Refused::bad("name"));
        }
        if name.len() > config.name_max_bytes {
            return Err(Refused::new(status::BEYOND_RANGE, "name"));
        }
    }
    if let Some(user_type) = info.get("userType")
        && !matches!(user_type.as_str(), Some("normal" | "visitor" | "blackList"))
    {
        return Err(Refused::bad("userType"));
    }
    if let Some(valid) = info.get("Valid") {
        let valid = valid.as_object().ok_or_else(|| Refused::bad("Valid"))?;
        if let Some(enable) = valid.get("enable")
            && !enable.is_boolean()
        {
            return Err(Refused::bad("Valid.enable"));
        }
        let mut times = Vec::new();
        for field in ["beginTime", "endTime"] {
            let path = format!("Valid.{field}");
            let time = super::string(valid, field, &path)?;
            if !is_valid_time(time) {
                return Err(Refused::bad(path));
            }
            times.push(time);
        }
        if times[0] > times[1] {
            return Err(Refused::bad("Valid.endTime"));
        }
        if let Some(time_type) = valid.get("timeType")
            && !matches!(time_type.as_str(), Some("local" | "UTC"))
        {
            return Err(Refused::bad("Valid.timeType"));
        }
    }
    if let Some(door_right) = info.get("doorRight")
        && !door_right.is_string()
    {
        return Err(Refused::bad("doorRight"));
    }
    match info.get("RightPlan") {
        None if full => return Err(Refused::lack("RightPlan")),
        None => {}
        Some(Value::Array(plans)) if plans.iter().all(Value::is_object) => {}
        Some(_) => return Err(Refused::bad("RightPlan")),
    }
    Ok(employee_no.to_string())
}

/// `YYYY-MM-DDTHH:MM:SS` (local time, no offset) between 2000-01-01T00:00:00 and
/// 2037-12-31T23:59:59. The fixed width makes text order time order.
fn is_valid_time(text: &str) -> bool {
    let b = text.as_bytes();
    let shape = b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return false;
    }
    let field = |range: std::ops::Range<usize>| text[range].parse::<u32>().unwrap_or(u32::MAX);
    (1..=12).contains(&field(5..7))
        && (1..=31).contains(&field(8..10))
        && field(11..13) < 24
        && field(14..16) < 60
        && field(17..19) < 60
        && (VALID_FROM..=VALID_TO).contains(&text)
}

/// The employeeNos of an `EmployeeNoList` (`badJsonContent` unless an array of objects each
/// holding a string `employeeNo`).
fn employee_list(list: &Value) -> Result<Vec<String>, Refused> {
    let content = || Refused::new(status::BAD_JSON_CONTENT, "EmployeeNoList");
    list.as_array()
        .ok_or_else(content)?
        .iter()
        .map(|item| {
            item.as_object()
                .and_then(|o| o.get("employeeNo"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(content)
        })
        .collect()
}

/// `POST /ISAPI/AccessControl/UserInfo/Search?format=json`.
pub(super) fn search(at: &Call<'_>, body: &Bytes) -> Result<Response, Refused> {
    let mut root = object(body)?;
    let cond = match root.remove("UserInfoSearchCond") {
        Some(Value::Object(cond)) => cond,
        Some(_) => return Err(Refused::bad("UserInfoSearchCond")),
        None => return Err(Refused::lack("UserInfoSearchCond")),
    };
    let search_id = super::search_id(&cond, true)?.unwrap_or_default();
    let (position, max) = paging(&cond)?;
    let wanted = match cond.get("EmployeeNoList") {
        None | Some(Value::Null) => None,
        Some(list) => {
            let ids = employee_list(list)?;
            if ids.len() > MAX_RESULTS as usize {
                return Err(Refused::bad("EmployeeNoList"));
            }
            Some(ids)
        }
    };
    let now = Instant::now();
    let mut t = at.state();
    let mut out = json!({
        "searchID": search_id,
        "responseStatusStrg": "NO MATCH",
        "numOfMatches": 0,
        "totalMatches": 0,
    });
    if !super::search_admits(&t.user_searches, &search_id, position) {
        return Ok(axum::Json(json!({ "UserInfoSearch": out })).into_response());
    }
    let matching: Vec<(&String, &Map<String, Value>)> = t
        .persons
        .iter()
        .filter(|(id, _)| wanted.as_ref().is_none_or(|w| w.contains(id)))
        .collect();
    let total = matching.len();
    let page: Vec<Value> = matching
        .into_iter()
        .skip(usize::try_from(position).unwrap_or(usize::MAX))
        .take(max as usize)
        .map(|(id, person)| {
            let mut shown = person.clone();
            let faces = t.faces.get(id).is_some_and(|f| f.visible(now));
            shown.insert("numOfCard".into(), json!(0));
            shown.insert("numOfFP".into(), json!(0));
            shown.insert("numOfFace".into(), json!(u8::from(faces)));
            Value::Object(shown)
        })
        .collect();
    out["responseStatusStrg"] = json!(response_status(position, page.len(), total));
    out["numOfMatches"] = json!(page.len());
    out["totalMatches"] = json!(total);
    let next = position + page.len() as u64;
    if !page.is_empty() {
        out["UserInfo"] = Value::Array(page);
    }
    t.user_searches.insert(search_id, next);
    Ok(axum::Json(json!({ "UserInfoSearch": out })).into_response())
}

/// `PUT /ISAPI/AccessControl/UserInfo/Delete?format=json`: the persons listed and their faces
/// go; absent ones are no error.
pub(super) fn delete(at: &Call<'_>, body: &Bytes) -> Result<Response, Refused> {
    let mut root = object(body)?;
    let cond = match root.remove("UserInfoDelCond") {
        Some(Value::Object(cond)) => cond,
        Some(_) => return Err(Refused::bad("UserInfoDelCond")),
        None => return Err(Refused::lack("UserInfoDelCond")),
    };
    let ids = match cond.get("EmployeeNoList") {
        None | Some(Value::Null) => return Err(Refused::lack("EmployeeNoList")),
        Some(list) => employee_list(list)?,
    };
    let mut t = at.state();
    for id in ids {
        t.persons.remove(&id);
        t.faces.remove(&id);
    }
    Ok(status::ok(at.request_url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_times_are_local_and_in_range() {
        for good in ["2000-01-01T00:00:00", "2026-02-28T12:30:59", VALID_TO] {
            assert!(is_valid_time(good), "{good}");
        }
        for bad in [
            "1999-12-31T23:59:59",
            "2038-01-01T00:00:00",
            "2026-13-01T00:00:00",
            "2026-01-01T24:00:00",
            "2026-01-01 00:00:00",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00+08:00",
            "",
        ] {
            assert!(!is_valid_time(bad), "{bad}");
        }
    }

    #[test]
    fn person_fields_are_checked_in_bytes() {
        let config = HikvisionConfig::default();
        let info = |v: Value| v.as_object().unwrap().clone();
        let plan = json!([{"doorNo": 1, "planTemplateNo": "1"}]);
        let ok = info(json!({"employeeNo": "1001", "name": "Ana", "RightPlan": plan}));
        assert_eq!(check(&ok, &config, true), Ok("1001".to_string()));
        let long = "张".repeat(43); // 129 bytes
        for (value, full, want) in [
            (
                json!({"name": "x", "RightPlan": plan}),
                true,
                (status::PARAMETERS_LACK, "employeeNo"),
            ),
            (
                json!({"employeeNo": "", "RightPlan": plan}),
                true,
                (status::BAD_PARAMETERS, "employeeNo"),
            ),
            (
                json!({"employeeNo": "x".repeat(33), "RightPlan": plan}),
                true,
                (status::BAD_PARAMETERS, "employeeNo"),
            ),
            (
                json!({"employeeNo": "1", "name": long, "RightPlan": plan}),
                true,
                (status::BEYOND_RANGE, "name"),
            ),
            (
                json!({"employeeNo": "1"}),
                true,
                (status::PARAMETERS_LACK, "RightPlan"),
            ),
            (
                json!({"employeeNo": "1", "userType": "admin"}),
                false,
                (status::BAD_PARAMETERS, "userType"),
            ),
            (
                json!({"employeeNo": "1", "Valid": {"beginTime": "2026-01-01T00:00:00", "endTime": "2040-01-01T00:00:00"}}),
                false,
                (status::BAD_PARAMETERS, "Valid.endTime"),
            ),
        ] {
            let got = check(&info(value.clone()), &config, full).unwrap_err();
            assert_eq!((got.code, got.msg.as_str()), want, "{value}");
        }
        assert!(check(&info(json!({"employeeNo": "1"})), &config, false).is_ok());
    }
}
