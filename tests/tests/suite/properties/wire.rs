//! 2. Wire and stored models round-trip through JSON; the parsers accept what the API documents.

use proptest::prelude::*;
use vmapi_models::*;

const ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOAKEyfwmZRghqzj9JLL8xl+SfAN+bqcjzApJNJ0S2Ck";

fn object_id() -> impl Strategy<Value = ObjectId> {
    any::<[u8; 12]>().prop_map(|b| {
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        ObjectId::parse(&hex).unwrap()
    })
}

fn host_name() -> impl Strategy<Value = HostName> {
    "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?".prop_map(|s| HostName::parse(&s).unwrap())
}

fn tag() -> impl Strategy<Value = Tag> {
    "[^\\p{Cc}]{1,64}".prop_map(|s| Tag::parse(&s).unwrap())
}

fn tags() -> impl Strategy<Value = Tags> {
    proptest::collection::vec(tag(), 0..=Tags::MAX).prop_map(|t| Tags::new(t).unwrap())
}

fn status() -> impl Strategy<Value = VmStatus> {
    proptest::sample::select(VmStatus::ALL.to_vec())
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (0i64..4_102_444_800_000).prop_map(|ms| Timestamp::from_unix_millis(ms).unwrap())
}

fn user_id() -> impl Strategy<Value = UserId> {
    "[^\\p{Cc}]{1,128}".prop_map(|s| UserId::parse(&s).unwrap())
}

fn text() -> impl Strategy<Value = String> {
    any::<String>()
}

fn region() -> impl Strategy<Value = Region> {
    (text(), text(), text()).prop_map(|(name, display_name, physical_location)| Region {
        datacenter: Datacenter { name, display_name },
        physical_location,
    })
}

fn image() -> impl Strategy<Value = Image> {
    (text(), text(), text()).prop_map(|(name, display_name, distribution)| Image {
        version: ImageVersion { name, display_name },
        distribution,
    })
}

fn access() -> impl Strategy<Value = Option<Access>> {
    prop_oneof![
        Just(None),
        Just(Some(Access {
            ssh_public_key: SshPublicKey::parse(ED25519).unwrap()
        })),
    ]
}

fn ip() -> impl Strategy<Value = IpConfiguration> {
    (
        object_id(),
        prop_oneof![Just("public"), Just("private")],
        any::<[u8; 4]>(),
    )
        .prop_map(|(id, kind, a)| IpConfiguration {
            id: IpConfigId(id),
            kind: kind.into(),
            method: "Dynamic".into(),
            version: "IPv4".into(),
            address: format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]),
        })
}

fn pending() -> impl Strategy<Value = Option<PendingOp>> {
    proptest::option::of(
        (
            proptest::sample::select(vec![
                OpKind::Create,
                OpKind::Start,
                OpKind::Stop,
                OpKind::Reboot,
                OpKind::Delete,
            ]),
            timestamp(),
            any::<u32>(),
        )
            .prop_map(|(op, requested_at, attempt)| PendingOp {
                op,
                requested_at,
                attempt,
            }),
    )
}

fn login() -> impl Strategy<Value = Option<Login>> {
    proptest::option::of(
        (
            "[a-z]{1,12}",
            proptest::option::of((object_id(), object_id(), any::<bool>())),
        )
            .prop_map(|(username, secret)| Login {
                username,
                secret: secret.map(|(team, vm, per_vm)| {
                    let scope = if per_vm {
                        CredentialScope::Vm
                    } else {
                        CredentialScope::Team
                    };
                    SecretRef {
                        path: scope.path(TeamId(team), VmId(vm)),
                        scope,
                    }
                }),
            }),
    )
}

fn cloud_ref() -> impl Strategy<Value = Option<CloudRef>> {
    proptest::option::of((text(), text(), text(), text()).prop_map(
        |(driver, id, region, raw_state)| CloudRef {
            driver,
            id,
            region,
            raw_state,
        },
    ))
}

prop_compose! {
    fn vm_record()(
        ids in (object_id(), object_id(), object_id(), object_id(), object_id(), object_id(), object_id(), object_id()),
        subscription in proptest::option::of(object_id()),
        name in host_name(),
        place in (region(), image()),
        attestation in any::<u128>(),
        access in access(),
        auth_password in any::<bool>(),
        status in status(),
        is_blocked in any::<bool>(),
        tags in tags(),
        owner in user_id(),
        ips in proptest::collection::vec(ip(), 0..4),
        times in (timestamp(), timestamp(), proptest::option::of(timestamp())),
        book in (login(), pending(), proptest::option::of(text()), cloud_ref(), proptest::option::of(any::<i64>())),
        (version, vcpus) in (any::<u64>(), proptest::option::of(any::<u32>())),
    ) -> VmRecord {
        let (vm, cloud_provider, provider, size, price, project, team, _) = ids;
        let (login, pending_op, status_reason, cloud, purge_after_epoch) = book;
        VmRecord {
            id: VmId(vm),
            name,
            region: place.0,
            image: place.1,
            attestation_id: uuid::Uuid::from_u128(attestation),
            access,
            auth_method: if auth_password { AuthMethod::Password } else { AuthMethod::SshKey },
            status,
            is_blocked,
            tags,
            subscription: subscription.map(SubscriptionId),
            cloud_provider: CloudProviderId(cloud_provider),
            provider: ProviderId(provider),
            size: SizeId(size),
            price: PriceId(price),
            owner,
            project: ProjectId(project),
            team: TeamId(team),
            ip_configurations: ips,
            created_at: times.0,
            updated_at: times.1,
            login,
            pending_op,
            status_reason,
            cloud,
            expires_at: times.2,
            purge_after_epoch,
            vcpus,
            rules: Vec::new(),
            rules_revision: 0,
            rules_applied: 0,
            billing: None,
            resize_to: None,
            version,
        }
    }
}

prop_compose! {
    fn create_request()(
        ids in (object_id(), object_id(), object_id(), object_id(), object_id(), object_id(), object_id()),
        names in proptest::collection::btree_set(host_name(), 1..=10),
        with_quantity in any::<bool>(),
        subscription in proptest::option::of(object_id()),
        tags in tags(),
        access in access(),
        place in (region(), image()),
        expires_at in proptest::option::of(timestamp()),
    ) -> CreateVmRequest {
        let (cloud_provider, team, project, provider, size, price, _) = ids;
        let names: Vec<HostName> = names.into_iter().collect();
        CreateVmRequest {
            cloud_provider: CloudProviderId(cloud_provider),
            team: TeamId(team),
            project: ProjectId(project),
            quantity: with_quantity.then_some(names.len() as u32),
            host_names: names,
            provider: ProviderId(provider),
            size: SizeId(size),
            price: PriceId(price),
            subscription: subscription.map(SubscriptionId),
            tags,
            auth_method: if access.is_some() { AuthMethod::SshKey } else { AuthMethod::Password },
            access,
            region: place.0,
            image: place.1,
            expires_at,
        }
    }
}

/// RFC 1123 label, written independently of `HostName::parse`.
fn is_rfc1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A stored record survives JSON unchanged (what DynamoDB items and stream images carry).
    #[test]
    fn vm_records_round_trip(vm in vm_record()) {
        let text = serde_json::to_string(&vm).unwrap();
        let back: VmRecord = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&back, &vm);
    }

    /// The wire form of a record survives JSON unchanged, with `statusName` beside `status`
    /// and references as ids.
    #[test]
    fn virtual_machines_round_trip(vm in vm_record()) {
        let wire = VirtualMachine::from_record(&vm);
        let json = serde_json::to_value(&wire).unwrap();
        prop_assert_eq!(&json["status"], &serde_json::json!(vm.status.code()));
        prop_assert_eq!(&json["statusName"], &serde_json::json!(vm.status.name()));
        prop_assert_eq!(&json["_id"], &serde_json::json!(vm.id.to_string()));
        prop_assert_eq!(&json["team"], &serde_json::json!(vm.team.to_string()));
        // Bookkeeping never goes on the wire.
        for hidden in ["login", "pendingOp", "cloud", "version", "expiresAtEpoch", "cloudProvider"] {
            prop_assert!(json.get(hidden).is_none(), "{} on the wire", hidden);
        }
        let back: VirtualMachine = serde_json::from_value(json).unwrap();
        prop_assert_eq!(back, wire);
    }

    /// Action answers say what the status says.
    #[test]
    fn action_results_name_their_status(id in object_id(), status in status()) {
        let json = serde_json::to_value(ActionResult::new(VmId(id), status)).unwrap();
        prop_assert_eq!(
            json,
            serde_json::json!({
                "message": format!("Virtual machine is {}", status.name()),
                "vmId": id.to_string(),
                "status": status.code(),
                "statusName": status.name(),
            })
        );
    }

    /// Create requests survive JSON unchanged, flat and wrapped the way clients send them.
    #[test]
    fn create_requests_round_trip(req in create_request()) {
        let text = serde_json::to_string(&req).unwrap();
        let back: CreateVmRequest = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&back, &req);
    }

    /// PATCH bodies survive JSON unchanged, including an explicit `expiresAt: null`.
    #[test]
    fn update_requests_round_trip(
        name in proptest::option::of(host_name()),
        tags in proptest::option::of(tags()),
        expires_at in proptest::option::of(proptest::option::of(timestamp())),
    ) {
        let req = UpdateVmRequest { name, tags, expires_at };
        let text = serde_json::to_string(&req).unwrap();
        let back: UpdateVmRequest = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, req);
    }

    /// Statuses: exactly the codes 0–8 parse, and each parses back to itself.
    #[test]
    fn statuses_parse_exactly_the_documented_codes(code in prop_oneof![0u64..16, any::<u64>()]) {
        let parsed: Result<VmStatus, _> = serde_json::from_value(serde_json::json!(code));
        match parsed {
            Ok(s) => {
                prop_assert!(code <= 8);
                prop_assert_eq!(u64::from(s.code()), code);
                prop_assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(code));
            }
            Err(_) => prop_assert!(code > 8),
        }
    }

    /// Host names: exactly RFC 1123 labels are accepted (any string, mostly near-misses).
    #[test]
    fn host_names_are_exactly_rfc1123_labels(
        s in prop_oneof![
            "[a-z0-9-]{0,65}",
            "[a-zA-Z0-9._ -]{0,70}",
            any::<String>(),
        ]
    ) {
        let parsed = HostName::parse(&s);
        prop_assert_eq!(parsed.is_ok(), is_rfc1123_label(&s), "{:?}", s);
        if let Ok(name) = parsed {
            let json = serde_json::to_string(&name).unwrap();
            prop_assert_eq!(serde_json::from_str::<HostName>(&json).unwrap(), name);
        }
    }
}
