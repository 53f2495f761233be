//! What goes on the wire: path segments built from ids (unreserved characters as they are,
//! the rest percent-encoded) against the emulator, which refuses an encoded unreserved
//! character; and TLS through a private CA (`ca_file`), with an HTTPS front made at test time.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::{FACES, Settings, Workspace, demo_photo, emulator, target};
use facesync::cli::render_summary;
use facesync::deliver::SyncOptions;
use facesync::reason::ReasonCode;
use facesync::store::State;
use facesync_emulator::{Emulator, EmulatorConfig};
use tokio::net::{TcpListener, TcpStream};

/// A workspace whose people P_1.. have these Feishu ids (the `feishu_id` column).
fn workspace(emu: &Emulator, feishu_ids: &[&str], feishu: &str, vzicloud: &str) -> Workspace {
    let ws = Workspace::empty();
    let mut roster = String::from("employee_id,name,feishu_id\n");
    for (i, feishu_id) in feishu_ids.iter().enumerate() {
        let id = format!("P_{}", i + 1);
        // A CSV field in quotes: ids may hold anything but a quote here.
        roster.push_str(&format!("{id},Person {i},\"{feishu_id}\"\n"));
        std::fs::copy(
            demo_photo(FACES[i % FACES.len()]),
            ws.path().join(format!("photos/{id}.jpg")),
        )
        .unwrap();
    }
    std::fs::write(ws.path().join("roster.csv"), roster).unwrap();
    ws.write_config(
        emu,
        &Settings {
            columns: "feishu_user_id = \"feishu_id\"",
            max_retries: 2,
            feishu,
            vzicloud,
            extra: "",
        },
    );
    ws
}

/// Ids with each unreserved punctuation mark, and characters that must be encoded.
const ODD_IDS: &[&str] = &[
    "ou_7dab8a3d3cdcc9da",
    "a.b",
    "c~d",
    "e-f",
    "g h/i",
    "张伟",
    "100%_x",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_with_unreserved_and_reserved_characters_reach_the_right_user() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = workspace(&emu, ODD_IDS, "", "prune_max_share = 1.0");
    let summary = ws.sync(SyncOptions::default()).await;
    assert_eq!(summary.exit_code(), 0, "{}", render_summary(&summary));
    let feishu = target(&summary, "feishu");
    assert_eq!(
        feishu.delivered,
        ODD_IDS.len(),
        "{}",
        render_summary(&summary)
    );
    // The pre-flight checked every user by id (GET /users/:user_id) before uploading.
    assert_eq!(
        emu.stats().requests_of("feishu.user_get"),
        ODD_IDS.len() as u64
    );
    for id in ODD_IDS {
        assert!(emu.feishu_face(id).is_some(), "no face stored for `{id}`");
    }

    // Downloads build the same path.
    let client = facesync::targets::build(&ws.config(), "feishu").unwrap();
    for id in ODD_IDS {
        let face = client.download(id, false).await.unwrap();
        assert_eq!(face, emu.feishu_face(id), "{id}");
    }

    // VziCloud: the group id goes into the user list's path, and a leaver's id (P_2, with an
    // underscore) into the deletion's.
    let roster = std::fs::read_to_string(ws.path().join("roster.csv")).unwrap();
    let kept: Vec<&str> = roster.lines().filter(|l| !l.starts_with("P_2,")).collect();
    std::fs::write(ws.path().join("roster.csv"), kept.join("\n") + "\n").unwrap();
    let pruned = ws
        .sync(SyncOptions {
            prune: true,
            ..SyncOptions::default()
        })
        .await;
    let vzicloud = target(&pruned, "vzicloud");
    assert_eq!(
        (vzicloud.removed, vzicloud.prune_refused.as_deref()),
        (1, None),
        "{}",
        render_summary(&pruned)
    );
    assert!(!emu.vzicloud_users("staff").contains(&"P_2".to_string()));
    let states = ws.states("vzicloud").await;
    assert!(
        states.contains(&("P_2".into(), State::Removed, Some(ReasonCode::LeftRoster))),
        "{states:?}"
    );
    emu.shutdown().await;
}

// ---- TLS ----

/// A private root CA and a certificate for 127.0.0.1 it signed, made now.
struct PrivateCa {
    ca_pem: String,
    server: rustls::ServerConfig,
}

fn private_ca() -> PrivateCa {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Corp TLS Inspection Root");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let server_params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone(), ca_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        )
        .unwrap();
    PrivateCa {
        ca_pem: ca_cert.pem(),
        server,
    }
}

/// An HTTPS front for the emulator, as a company's TLS-inspecting proxy presents the clouds:
/// TLS ends here with the private CA's certificate, the bytes go on to the emulator.
async fn https_front(server: rustls::ServerConfig, upstream: SocketAddr) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that does not trust the certificate hangs up during the handshake.
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    format!("https://{addr}")
}

fn emulator_addr(emu: &Emulator) -> SocketAddr {
    emu.base_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_is_refused_with_advice_until_ca_file_names_it() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ca = private_ca();
    let front = https_front(ca.server, emulator_addr(&emu)).await;
    let host = front.trim_start_matches("https://");
    let host = host.split(':').next().unwrap().to_string();

    let run = |ca_line: &'static str| {
        let ws = workspace(&emu, &["ou_1", "ou_2"], ca_line, ca_line);
        let text = std::fs::read_to_string(ws.config_path())
            .unwrap()
            .replace(&emu.base_url(), &front);
        std::fs::write(ws.config_path(), text).unwrap();
        std::fs::write(ws.path().join("corp-ca.pem"), &ca.ca_pem).unwrap();
        ws
    };

    let untrusted = run("");
    let summary = untrusted.sync(SyncOptions::default()).await;
    assert_eq!(summary.exit_code(), 1, "{}", render_summary(&summary));
    for name in ["feishu", "vzicloud"] {
        let t = target(&summary, name);
        assert_eq!(t.delivered, 0);
        let stopped = t.stopped.as_deref().unwrap_or_default();
        let section = format!("`ca_file` under [targets.{name}]");
        for part in [host.as_str(), "not trusted", section.as_str()] {
            assert!(
                stopped.contains(part),
                "{name}: `{stopped}` should name `{part}`"
            );
        }
    }
    assert_eq!(emu.stats().requests_of("feishu.face_upload"), 0);

    let trusted = run("ca_file = \"corp-ca.pem\"");
    let summary = trusted.sync(SyncOptions::default()).await;
    assert_eq!(summary.exit_code(), 0, "{}", render_summary(&summary));
    assert_eq!(target(&summary, "feishu").delivered, 2);
    assert_eq!(target(&summary, "vzicloud").delivered, 2);
    assert!(emu.feishu_face("ou_1").is_some());
    emu.shutdown().await;
}
