//! The vocabulary of why a person cannot be (or was not) delivered.
//!
//! Every finding the tool records, from a bad roster row to a cloud refusing a face, carries one
//! of these codes. The code is stable (reports, the state DB and admins' scripts key on it); the
//! advice is what the HTML report and the terminal summary tell an admin to do about it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::photo::Quality;

/// A stable, machine-readable reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    // Roster rows.
    MissingId,
    DuplicateId,
    BadTargetId,
    PhotoOutsideFolder,
    // Looking a person up by e-mail or mobile.
    ContactNotFound,
    UserResigned,
    // Matching a person to a photo.
    NoPhoto,
    AmbiguousPhoto,
    PhotoUnreadable,
    // The photo itself.
    UnsupportedFormat,
    CorruptImage,
    ImageTooLarge,
    TooSmall,
    NoFace,
    MultipleFaces,
    FaceTooSmall,
    CannotFit,
    // The quality gate (`photos.quality`), against one target's requirements.
    EyesTooClose,
    FaceTurned,
    FaceTilted,
    FaceBlurry,
    FaceTooDark,
    FaceTooBright,
    // One photo under two roster ids (`photos.duplicate_photos`).
    DuplicatePhoto,
    // Answers from a target.
    UserNotFound,
    FaceRejected,
    NotInAccessGroup,
    BadRequest,
    Throttled,
    ServerError,
    NetworkError,
    AuthFailed,
    QuotaExhausted,
    DeviceFull,
    NotSupported,
    FaceNotKept,
    Interrupted,
    TargetStopped,
    // Leavers.
    LeftRoster,
}

impl ReasonCode {
    /// Every code, in declaration order (tests and docs iterate over it).
    pub const ALL: &'static [ReasonCode] = &[
        Self::MissingId,
        Self::DuplicateId,
        Self::BadTargetId,
        Self::PhotoOutsideFolder,
        Self::ContactNotFound,
        Self::UserResigned,
        Self::NoPhoto,
        Self::AmbiguousPhoto,
        Self::PhotoUnreadable,
        Self::UnsupportedFormat,
        Self::CorruptImage,
        Self::ImageTooLarge,
        Self::TooSmall,
        Self::NoFace,
        Self::MultipleFaces,
        Self::FaceTooSmall,
        Self::CannotFit,
        Self::EyesTooClose,
        Self::FaceTurned,
        Self::FaceTilted,
        Self::FaceBlurry,
        Self::FaceTooDark,
        Self::FaceTooBright,
        Self::DuplicatePhoto,
        Self::UserNotFound,
        Self::FaceRejected,
        Self::NotInAccessGroup,
        Self::BadRequest,
        Self::Throttled,
        Self::ServerError,
        Self::NetworkError,
        Self::AuthFailed,
        Self::QuotaExhausted,
        Self::DeviceFull,
        Self::NotSupported,
        Self::FaceNotKept,
        Self::Interrupted,
        Self::TargetStopped,
        Self::LeftRoster,
    ];

    /// The snake_case code as written in reports and the state DB.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingId => "missing_id",
            Self::DuplicateId => "duplicate_id",
            Self::BadTargetId => "bad_target_id",
            Self::PhotoOutsideFolder => "photo_outside_folder",
            Self::ContactNotFound => "contact_not_found",
            Self::UserResigned => "user_resigned",
            Self::NoPhoto => "no_photo",
            Self::AmbiguousPhoto => "ambiguous_photo",
            Self::PhotoUnreadable => "photo_unreadable",
            Self::UnsupportedFormat => "unsupported_format",
            Self::CorruptImage => "corrupt_image",
            Self::ImageTooLarge => "image_too_large",
            Self::TooSmall => "too_small",
            Self::NoFace => "no_face",
            Self::MultipleFaces => "multiple_faces",
            Self::FaceTooSmall => "face_too_small",
            Self::CannotFit => "cannot_fit",
            Self::EyesTooClose => "eyes_too_close",
            Self::FaceTurned => "face_turned",
            Self::FaceTilted => "face_tilted",
            Self::FaceBlurry => "face_blurry",
            Self::FaceTooDark => "face_too_dark",
            Self::FaceTooBright => "face_too_bright",
            Self::DuplicatePhoto => "duplicate_photo",
            Self::UserNotFound => "user_not_found",
            Self::FaceRejected => "face_rejected",
            Self::NotInAccessGroup => "not_in_access_group",
            Self::BadRequest => "bad_request",
            Self::Throttled => "throttled",
            Self::ServerError => "server_error",
            Self::NetworkError => "network_error",
            Self::AuthFailed => "auth_failed",
            Self::QuotaExhausted => "quota_exhausted",
            Self::DeviceFull => "device_full",
            Self::NotSupported => "not_supported",
            Self::FaceNotKept => "face_not_kept",
            Self::Interrupted => "interrupted",
            Self::TargetStopped => "target_stopped",
            Self::LeftRoster => "left_roster",
        }
    }

    /// A photo finding that may hold for one target's profile and not another's (a byte
    /// budget, a target's own minimum size): a photo prepared for several targets at once that
    /// meets it is prepared again for each on its own.
    pub fn may_be_one_targets(self) -> bool {
        matches!(self, Self::CannotFit | Self::TooSmall) || self.is_quality()
    }

    /// A measure of the quality gate outside a target's requirements.
    pub fn is_quality(self) -> bool {
        matches!(
            self,
            Self::EyesTooClose
                | Self::FaceTurned
                | Self::FaceTilted
                | Self::FaceBlurry
                | Self::FaceTooDark
                | Self::FaceTooBright
        )
    }

    /// Parses the snake_case form back (the state DB stores codes as text).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// What an admin should do about it, in plain words.
    pub fn advice(self) -> &'static str {
        match self {
            Self::MissingId => "fill in the employee id in this roster row",
            Self::DuplicateId => {
                "give each person a unique employee id; no copy is uploaded until then"
            }
            Self::BadTargetId => {
                "use only letters, digits and underscore (at most 48) or set a per-target id column"
            }
            Self::PhotoOutsideFolder => {
                "keep photos inside the photo folder and give a relative path"
            }
            Self::ContactNotFound => {
                "no user the app can see has this e-mail or mobile: fix it in the roster, fill in the target's user id column, or widen the app's contact data permission"
            }
            Self::UserResigned => {
                "the person has left the organisation in the target: remove them from the roster"
            }
            Self::NoPhoto => "add a photo named <employee id>.jpg to the photo folder",
            Self::AmbiguousPhoto => "keep one photo per person: remove or rename the extra file",
            Self::PhotoUnreadable => {
                "check the file's permissions and that it is not still being copied"
            }
            Self::UnsupportedFormat => "export the photo as JPEG (or PNG) and replace the file",
            Self::CorruptImage => {
                "the file is damaged or truncated: copy it again from the original"
            }
            Self::ImageTooLarge => {
                "the image is larger than the configured limits: export a smaller copy"
            }
            Self::TooSmall => "retake the photo at a higher resolution",
            Self::NoFace => "no face found: retake the photo facing the camera",
            Self::MultipleFaces => "several faces found: use a photo of this person alone",
            Self::FaceTooSmall => {
                "the face is too small: retake the photo closer, head and shoulders"
            }
            Self::CannotFit => {
                "the photo cannot be made small enough for the target: use a simpler photo"
            }
            Self::EyesTooClose => {
                "the face is too small for this target: retake closer, head and shoulders filling the frame, at a higher resolution"
            }
            Self::FaceTurned => "ask for a retake looking straight into the camera",
            Self::FaceTilted => "ask for a retake with the head upright, eyes level",
            Self::FaceBlurry => {
                "ask for a retake held still and in focus, in good light (no digital zoom)"
            }
            Self::FaceTooDark => {
                "ask for a retake with light on the face, not from behind the person"
            }
            Self::FaceTooBright => "ask for a retake without flash or direct sun on the face",
            Self::DuplicatePhoto => {
                "two roster ids have the same photo: check who is in it and give the other person their own; one person under two ids: allow the pair with photos.allow_same_photo"
            }
            Self::UserNotFound => {
                "the target does not know this user: add the user there, or fix the id column"
            }
            Self::FaceRejected => {
                "the target could not find a usable face: retake the photo facing the camera in good light"
            }
            Self::NotInAccessGroup => {
                "not in an access-control group: add the user in the Feishu admin console"
            }
            Self::BadRequest => {
                "the target refused the request: see the message and the target's documentation"
            }
            Self::Throttled => {
                "the target kept throttling: lower rate_per_second or run again later"
            }
            Self::ServerError => "the target had a server error: it is retried on the next run",
            Self::NetworkError => {
                "the target could not be reached: check the network and base_url; retried on the next run"
            }
            Self::AuthFailed => {
                "the target refused the credentials or scope: check app id, secret and permissions"
            }
            Self::QuotaExhausted => {
                "the target's request quota is used up: contact the vendor; retried on the next run"
            }
            Self::DeviceFull => {
                "the terminal holds as many people or faces as it can: prune leavers (sync --prune) or move people to another terminal"
            }
            Self::NotSupported => {
                "the target's firmware does not offer a call facesync needs: see the message; update the firmware or check the model"
            }
            Self::FaceNotKept => {
                "the terminal answered OK but did not keep the face: it is sent again; if it keeps happening, check the terminal's storage and firmware"
            }
            Self::Interrupted => {
                "the run was stopped before this person finished: it is retried on the next run"
            }
            Self::TargetStopped => {
                "the target stopped during the run (see the run's log): retried on the next run"
            }
            Self::LeftRoster => {
                "no longer in the roster, so removed from the target: add the person back to the roster if that is wrong"
            }
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reason code with the specific message for this person ("row 7: id is empty").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub code: ReasonCode,
    pub message: String,
    /// What the quality gate measured, for its own findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Box<Quality>>,
}

impl Finding {
    pub fn new(code: ReasonCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            quality: None,
        }
    }

    /// The finding with the measures that led to it.
    pub fn with_quality(mut self, quality: Quality) -> Self {
        self.quality = Some(Box::new(quality));
        self
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_text() {
        for &code in ReasonCode::ALL {
            assert_eq!(ReasonCode::parse(code.as_str()), Some(code));
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert!(!code.advice().is_empty());
        }
    }
}
