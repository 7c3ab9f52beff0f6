//! Unit tests of the AWS driver's files (mocked EC2 clients drive it in `tests/aws_mocks.rs`).

use aws_sdk_ec2::error::SdkError;
use vmapi_core::cloud::{DriverError, LoginSpec};
use vmapi_models::{CloudKind, Ports, Protocol, RuleAccess, RuleName, SecurityRule, Timestamp};

use super::errors::*;
use super::group::*;
use super::instance::*;

fn rule(name: &str, protocol: Protocol, ports: &[&str], cidr: &str) -> SecurityRule {
    let mut r = SecurityRule::default_for(Some(CloudKind::Aws), 1, Timestamp::now());
    r.name = RuleName::parse(name).unwrap();
    r.protocol = protocol;
    r.port_range = Ports::parse(ports).unwrap();
    r.cidr_block = cidr.parse().unwrap();
    r
}

#[test]
fn rules_map_to_ingress_permissions() {
    let perms = permissions(&[
        rule("a", Protocol::Tcp, &["22", "8000-8090"], "0.0.0.0/0"),
        rule("b", Protocol::Any, &["53"], "10.0.0.0/8"),
        rule("c", Protocol::Any, &["*"], "192.0.2.0/24"),
        rule("d", Protocol::Icmp, &["*"], "2001:db8::/32"),
        rule("e", Protocol::Udp, &["*"], "0.0.0.0/0"),
        // The same permission again: once, under the first rule's name.
        rule("f", Protocol::Tcp, &["22"], "0.0.0.0/0"),
    ])
    .unwrap();
    let text: Vec<String> = perms
        .iter()
        .map(|(p, d)| format!("{} {} {} {} {d}", p.protocol, p.from, p.to, p.cidr))
        .collect();
    assert_eq!(
        text,
        [
            "tcp 22 22 0.0.0.0/0 a",
            "tcp 8000 8090 0.0.0.0/0 a",
            "tcp 53 53 10.0.0.0/8 b",
            "udp 53 53 10.0.0.0/8 b",
            "-1 -1 -1 192.0.2.0/24 c",
            "icmpv6 -1 -1 2001:db8::/32 d",
            "udp 0 65535 0.0.0.0/0 e",
        ]
    );
    let mut deny = rule("x", Protocol::Tcp, &["22"], "0.0.0.0/0");
    deny.access = RuleAccess::Deny;
    assert!(matches!(
        permissions(&[deny]),
        Err(DriverError::InvalidSpec(_))
    ));
    assert_eq!(normalize_protocol("6"), "tcp");
    assert_eq!(normalize_protocol("ALL"), "-1");
    assert_eq!(normalize_protocol("58"), "icmpv6");
}

mod errors {
    use super::*;
    use aws_sdk_ec2::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_ec2::operation::run_instances::RunInstancesError;

    type Sdk = SdkError<RunInstancesError, ()>;

    fn service(code: &str, message: &str) -> Sdk {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        SdkError::service_error(RunInstancesError::generic(meta), ())
    }

    fn refused() -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "tcp connect error: Connection refused (os error 111)",
        )
    }

    #[test]
    fn service_errors_keep_code_and_message() {
        let e = map_err(service(
            "InvalidParameterValue",
            "Value (m9.huge) for parameter instanceType is invalid.",
        ));
        assert_eq!(
            e,
            DriverError::InvalidSpec(
                "InvalidParameterValue: Value (m9.huge) for parameter instanceType is invalid."
                    .into()
            )
        );
        let e = map_err(service("InternalError", "An internal error has occurred"));
        assert_eq!(
            e.to_string(),
            "provider error InternalError: An internal error has occurred"
        );
        let e = map_err(service(
            "AuthFailure",
            "AWS was not able to validate the provided access credentials",
        ));
        assert!(
            e.to_string()
                .contains("AuthFailure: AWS was not able to validate"),
            "{e}"
        );
    }

    #[test]
    fn unreachable_keeps_the_underlying_cause() {
        let e = map_err(Sdk::dispatch_failure(ConnectorError::io(refused().into())));
        let DriverError::Unreachable(m) = &e else {
            panic!("{e:?}")
        };
        assert!(m.starts_with("dispatch failure"), "{m}");
        assert!(m.contains("Connection refused (os error 111)"), "{m}");
        // What the provisioner logs is the error's text.
        assert!(e.to_string().contains("Connection refused"), "{e}");
        // Users read a generic reason, never the internals.
        assert_eq!(e.user_reason(), "the cloud could not be reached");

        let e = map_err(Sdk::timeout_error(
            "operation attempt timeout occurred after 4s",
        ));
        assert!(
            matches!(&e, DriverError::Unreachable(m) if m.contains("attempt timeout occurred after 4s")),
            "{e:?}"
        );
        let e = map_err(Sdk::response_error(
            "invalid XML: unexpected end of input",
            (),
        ));
        assert!(
            matches!(&e, DriverError::Unreachable(m) if m.contains("invalid XML: unexpected end of input")),
            "{e:?}"
        );
    }

    #[test]
    fn a_request_that_cannot_be_built_logs_its_cause() {
        let (logs, e) = crate::test_log::capture(|| {
            map_err(Sdk::construction_failure(
                "failed to resolve endpoint: a region must be set",
            ))
        });
        // The status reason users read is unchanged…
        assert_eq!(
            e,
            DriverError::Provider {
                code: "SdkError".into(),
                message: "failed to construct request".into(),
            }
        );
        // …and the log carries the cause.
        assert!(logs.contains("ERROR"), "{logs}");
        assert!(
            logs.contains(
                "failed to construct request: failed to resolve endpoint: a region must be set"
            ),
            "{logs}"
        );
    }
}

#[test]
fn cloud_init_carries_keys_and_hash_only() {
    let login = LoginSpec {
        username: "root".into(),
        public_keys: vec!["ssh-ed25519 AAAAC3Nza vm-api-x".into()],
        password_hash: Some("$6$salt$hash".into()),
        password: Some(vmapi_models::Sensitive::new("plain-Text-9!".into())),
    };
    let ud = cloud_init(&login);
    assert!(ud.starts_with("#cloud-config\n"));
    assert!(ud.contains("hashed_passwd: \"$6$salt$hash\""));
    assert!(ud.contains("- \"ssh-ed25519 AAAAC3Nza vm-api-x\""));
    assert!(ud.contains("ssh_pwauth: true"));
    assert!(!ud.contains("plain-Text-9!"), "never the plaintext");
    let keys_only = cloud_init(&LoginSpec {
        password_hash: None,
        password: None,
        ..login
    });
    assert!(keys_only.contains("lock_passwd: true") && keys_only.contains("ssh_pwauth: false"));
}
