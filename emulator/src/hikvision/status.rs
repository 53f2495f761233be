//! The terminal's answers to writes and refusals: ISAPI's `ResponseStatus`, and the one table
//! of the codes the emulator answers with ([`Code`]), each with the source letters of
//! `reference/hikvision-isapi.md` §5 that it comes from.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::faults::Refusal;

/// One refusal the terminal answers with: `statusCode`, `subStatusCode`, the decimal
/// `errorCode` and the HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Code {
    pub(crate) status_code: u8,
    pub(crate) sub_status: &'static str,
    pub(crate) error_code: i64,
    pub(crate) http: StatusCode,
}

const fn code(status_code: u8, sub_status: &'static str, error_code: i64, http: u16) -> Code {
    let http = match StatusCode::from_u16(http) {
        Ok(s) => s,
        Err(_) => panic!("a valid HTTP status"),
    };
    Code {
        status_code,
        sub_status,
        error_code,
        http,
    }
}

// The table. statusCode / subStatusCode / errorCode (hex as the sources give it) / HTTP.
/// `deviceBusy`: 0x20000004, HTTP 503 [TC][EMU] (both marked unconfirmed).
pub(crate) const DEVICE_BUSY: Code = code(2, "deviceBusy", 0x2000_0004, 503);
/// `deviceError`: 0x30000001 [ERR]; no HTTP status on record, 400 here. Answered for a full
/// terminal, for which no device response is on record.
pub(crate) const DEVICE_ERROR: Code = code(3, "deviceError", 0x3000_0001, 400);
/// `notSupport`: 0x40000001, HTTP 200 with the failure body as K1A340 answers [G][K1A].
pub(crate) const NOT_SUPPORT: Code = code(4, "notSupport", 0x4000_0001, 200);
/// An unknown ISAPI path: `notSupport` with HTTP 404.
pub(crate) const NOT_FOUND: Code = code(4, "notSupport", 0x4000_0001, 404);
/// `methodNotAllowed`: 0x40000004 [CBG][TC]; HTTP 400 here.
pub(crate) const METHOD_NOT_ALLOWED: Code = code(4, "methodNotAllowed", 0x4000_0004, 400);
/// `badJsonFormat`: 0x50000002, HTTP 400 [CBG][EMU]; also a quoted multipart boundary [TC]
/// and a photo over the size limit (`faceURL`, [PH1][DL][SK][RS]).
pub(crate) const BAD_JSON_FORMAT: Code = code(5, "badJsonFormat", 0x5000_0002, 400);
/// `badParameters`: 0x60000001, HTTP 400; `errorMsg` names the field [TC][ERR].
pub(crate) const BAD_PARAMETERS: Code = code(6, "badParameters", 0x6000_0001, 400);
/// `badJsonContent`: 0x60000002, HTTP 400: `EmployeeNoList` not an array of objects [MF].
pub(crate) const BAD_JSON_CONTENT: Code = code(6, "badJsonContent", 0x6000_0002, 400);
/// `MessageParametersLack`: 0x60000019, HTTP 400; `errorMsg` the missing field [K1A][RU].
pub(crate) const PARAMETERS_LACK: Code = code(6, "MessageParametersLack", 0x6000_0019, 400);
/// `beyondARGSRangeLimit`: 0x60000025, a string over its byte limit [CBG][TC]; HTTP 400 here.
pub(crate) const BEYOND_RANGE: Code = code(6, "beyondARGSRangeLimit", 0x6000_0025, 400);
/// `SubpicAnalysisModelingError`: 0x60000037, HTTP 400, `saveFacePic` / `PicFeaturePoints`
/// [MOD][SK][PH2][PHP].
pub(crate) const MODELING_ERROR: Code = code(6, "SubpicAnalysisModelingError", 0x6000_0037, 400);
/// `employeeNoNotExist`: 0x6000601F (of the two values emulators use) [EMU][T2].
pub(crate) const EMPLOYEE_NOT_EXIST: Code = code(6, "employeeNoNotExist", 0x6000_601F, 400);
/// `employeeNoAlreadyExist`: 0x60006020, `errorMsg` `checkUser`, HTTP 400 [EX][EX2].
pub(crate) const EMPLOYEE_EXISTS: Code = code(6, "employeeNoAlreadyExist", 0x6000_6020, 400);
/// `deviceUserAlreadyExistFace`: 0x60007004, HTTP 400 [MF][SK][EMU] (code unconfirmed).
pub(crate) const FACE_EXISTS: Code = code(6, "deviceUserAlreadyExistFace", 0x6000_7004, 400);

/// A refusal: a code and the field or detail it names (`errorMsg`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) code: Code,
    pub(crate) msg: String,
}

impl Refused {
    pub(crate) fn new(code: Code, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
        }
    }

    /// `badParameters` naming `field`.
    pub(crate) fn bad(field: impl Into<String>) -> Self {
        Self::new(BAD_PARAMETERS, field)
    }

    /// `MessageParametersLack` naming the missing `field`.
    pub(crate) fn lack(field: impl Into<String>) -> Self {
        Self::new(PARAMETERS_LACK, field)
    }

    /// The answer to `request_url` (the path without the terminal prefix): JSON, or the XML
    /// form for the endpoints that answer XML.
    pub(crate) fn answer(&self, request_url: &str, xml: bool) -> Response {
        let c = self.code;
        let mut response = if xml {
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ResponseStatus version=\"2.0\" \
                 xmlns=\"http://www.isapi.org/ver20/XMLSchema\">\n<requestURL>{}</requestURL>\n\
                 <statusCode>{}</statusCode>\n<statusString>{}</statusString>\n\
                 <subStatusCode>{}</subStatusCode>\n<errorCode>{}</errorCode>\n\
                 <errorMsg>{}</errorMsg>\n</ResponseStatus>\n",
                xml_escape(request_url),
                c.status_code,
                status_string(c.status_code),
                c.sub_status,
                c.error_code,
                xml_escape(&self.msg)
            );
            (c.http, [(header::CONTENT_TYPE, XML)], body).into_response()
        } else {
            let body = json!({
                "requestURL": request_url,
                "statusCode": c.status_code,
                "statusString": status_string(c.status_code),
                "subStatusCode": c.sub_status,
                "errorCode": c.error_code,
                "errorMsg": self.msg,
            });
            (c.http, axum::Json(body)).into_response()
        };
        response.extensions_mut().insert(Refusal(c.error_code));
        response
    }
}

/// The content type of the XML answers.
pub(crate) const XML: &str = "application/xml; charset=UTF-8";

/// The `ResponseStatus` of a write that succeeded.
pub(crate) fn ok(request_url: &str) -> Response {
    axum::Json(json!({
        "requestURL": request_url,
        "statusCode": 1,
        "statusString": "OK",
        "subStatusCode": "ok",
    }))
    .into_response()
}

/// `statusString` for a `statusCode` [ERR][CBG].
fn status_string(status_code: u8) -> &'static str {
    match status_code {
        1 => "OK",
        2 => "Device Busy",
        3 => "Device Error",
        4 => "Invalid Operation",
        5 => "Invalid Format",
        6 => "Invalid Content",
        _ => "Reboot Required",
    }
}

/// `&`, `<`, `>`, `"` and `'` as XML entities.
pub(crate) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_starts_with_its_status_code_digit() {
        for c in [
            DEVICE_BUSY,
            DEVICE_ERROR,
            NOT_SUPPORT,
            NOT_FOUND,
            METHOD_NOT_ALLOWED,
            BAD_JSON_FORMAT,
            BAD_PARAMETERS,
            BAD_JSON_CONTENT,
            PARAMETERS_LACK,
            BEYOND_RANGE,
            MODELING_ERROR,
            EMPLOYEE_NOT_EXIST,
            EMPLOYEE_EXISTS,
            FACE_EXISTS,
        ] {
            assert_eq!(c.error_code >> 28, i64::from(c.status_code), "{c:?}");
        }
        // The decimal values the interface names.
        assert_eq!(DEVICE_BUSY.error_code, 536870916);
        assert_eq!(NOT_SUPPORT.error_code, 1073741825);
        assert_eq!(METHOD_NOT_ALLOWED.error_code, 1073741828);
        assert_eq!(BAD_JSON_FORMAT.error_code, 1342177282);
        assert_eq!(BAD_PARAMETERS.error_code, 1610612737);
        assert_eq!(BAD_JSON_CONTENT.error_code, 1610612738);
        assert_eq!(PARAMETERS_LACK.error_code, 1610612761);
        assert_eq!(BEYOND_RANGE.error_code, 1610612773);
        assert_eq!(MODELING_ERROR.error_code, 1610612791);
        assert_eq!(EMPLOYEE_NOT_EXIST.error_code, 1610637343);
        assert_eq!(EMPLOYEE_EXISTS.error_code, 1610637344);
        assert_eq!(FACE_EXISTS.error_code, 1610641412);
        assert_eq!(DEVICE_ERROR.error_code, 805306369);
    }

    #[test]
    fn xml_text_is_escaped() {
        assert_eq!(xml_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
    }
}
