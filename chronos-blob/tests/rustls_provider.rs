//! An application's own HTTP client keeps working in a process that links Chronos, whether
//! or not Chronos built one of its clients first. (With reqwest's provider-less rustls
//! enabled by this crate, building any reqwest client before a crypto provider was
//! installed panicked: "No rustls crypto provider is configured".)

#[test]
fn an_applications_own_client_builds_before_ours() {
    let client = reqwest::Client::builder().build();
    assert!(client.is_ok(), "{:?}", client.err());
}

#[tokio::test]
async fn our_client_installs_nothing_global() {
    let conn = chronos_blob::SpaceConnection::new(
        "s3",
        chronos_blob::SpaceOptions {
            endpoint: "https://s3.example.invalid".into(),
            access_key: Some("k".into()),
            secret_key: Some("s".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(conn.bucket("b").is_ok());
    assert!(rustls::crypto::CryptoProvider::get_default().is_none());
    assert!(reqwest::Client::builder().build().is_ok());
}
