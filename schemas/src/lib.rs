//! The stored and published contract: the protobuf event envelope and every
//! event payload, generated from `proto/` by prost.
//!
//! Each payload type implements [`EventPayload`], which names it (`iga.v1.UserCreated`)
//! and gives its current schema version. [`DomainEvent`] is the closed set of
//! events the service understands; [`DomainEvent::decode`] turns a stored
//! `(event_type, schema_version, bytes)` triple back into a typed event,
//! upcasting older schema versions on the way (see [`upcast`]).

pub mod upcast;

/// Generated protobuf types of package `iga.v1`.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/iga.v1.rs"));
}

pub use v1::EventEnvelope;

use prost::Message;

/// A protobuf message that is stored as an event payload.
pub trait EventPayload: Message + Default + Clone + Sized {
    /// Fully-qualified message name; the envelope's `event_type`.
    const TYPE: &'static str;
    /// The schema version this build writes.
    const SCHEMA_VERSION: u32;
}

/// Why stored bytes could not be turned into a [`DomainEvent`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("event type {event_type} has schema version {version}, newer than this build understands ({supported})")]
    FutureVersion {
        event_type: String,
        version: u32,
        supported: u32,
    },
    #[error("malformed {event_type} payload: {source}")]
    Malformed {
        event_type: String,
        #[source]
        source: prost::DecodeError,
    },
}

macro_rules! domain_events {
    ($($variant:ident => $ty:ident, $name:literal, $version:literal;)*) => {
        $(
            impl EventPayload for v1::$ty {
                const TYPE: &'static str = $name;
                const SCHEMA_VERSION: u32 = $version;
            }
            impl From<v1::$ty> for DomainEvent {
                fn from(e: v1::$ty) -> Self { DomainEvent::$variant(e) }
            }
        )*

        /// Every event the service writes, typed.
        #[derive(Debug, Clone, PartialEq, serde::Serialize)]
        #[serde(untagged)]
        pub enum DomainEvent {
            $($variant(v1::$ty),)*
        }

        impl DomainEvent {
            /// The envelope's `event_type` for this event.
            pub fn event_type(&self) -> &'static str {
                match self { $(DomainEvent::$variant(_) => $name,)* }
            }

            /// The schema version this build writes for this event.
            pub fn schema_version(&self) -> u32 {
                match self { $(DomainEvent::$variant(_) => $version,)* }
            }

            /// Protobuf bytes of the payload.
            pub fn encode_payload(&self) -> Vec<u8> {
                match self { $(DomainEvent::$variant(e) => e.encode_to_vec(),)* }
            }

            /// Decodes a stored payload, upcasting older schema versions.
            pub fn decode(event_type: &str, schema_version: u32, payload: &[u8]) -> Result<Self, DecodeError> {
                match event_type {
                    $($name => {
                        if schema_version > $version {
                            return Err(DecodeError::FutureVersion {
                                event_type: event_type.to_string(),
                                version: schema_version,
                                supported: $version,
                            });
                        }
                        let bytes = upcast::upcast(event_type, schema_version, payload);
                        v1::$ty::decode(bytes.as_ref())
                            .map(DomainEvent::$variant)
                            .map_err(|source| DecodeError::Malformed { event_type: event_type.to_string(), source })
                    })*
                    other => Err(DecodeError::UnknownType(other.to_string())),
                }
            }

            /// Every event type name this build knows, with its schema version.
            pub const ALL_TYPES: &'static [(&'static str, u32)] = &[$(($name, $version),)*];
        }
    };
}

domain_events! {
    UserCreated => UserCreated, "iga.v1.UserCreated", 1;
    UserUpdated => UserUpdated, "iga.v1.UserUpdated", 1;
    ApiTokenIssued => ApiTokenIssued, "iga.v1.ApiTokenIssued", 1;
    ApiTokenRevoked => ApiTokenRevoked, "iga.v1.ApiTokenRevoked", 1;
    UsernameClaimed => UsernameClaimed, "iga.v1.UsernameClaimed", 1;
    AdminRosterChanged => AdminRosterChanged, "iga.v1.AdminRosterChanged", 1;
    ApiTokenUsed => ApiTokenUsed, "iga.v1.ApiTokenUsed", 1;
    IdempotencyKeyUsed => IdempotencyKeyUsed, "iga.v1.IdempotencyKeyUsed", 1;
    AppCreated => AppCreated, "iga.v1.AppCreated", 1;
    AppUpdated => AppUpdated, "iga.v1.AppUpdated", 1;
    AppActivated => AppActivated, "iga.v1.AppActivated", 1;
    AppDeactivated => AppDeactivated, "iga.v1.AppDeactivated", 1;
    AppDeleted => AppDeleted, "iga.v1.AppDeleted", 1;
    AppRestored => AppRestored, "iga.v1.AppRestored", 1;
    AppOwnersSet => AppOwnersSet, "iga.v1.AppOwnersSet", 1;
    AppResourceTypeCreated => AppResourceTypeCreated, "iga.v1.AppResourceTypeCreated", 1;
    AppResourceCreated => AppResourceCreated, "iga.v1.AppResourceCreated", 1;
    AppEntitlementCreated => AppEntitlementCreated, "iga.v1.AppEntitlementCreated", 1;
    AppEntitlementUpdated => AppEntitlementUpdated, "iga.v1.AppEntitlementUpdated", 1;
    AppEntitlementDeleted => AppEntitlementDeleted, "iga.v1.AppEntitlementDeleted", 1;
    AppEntitlementOwnersSet => AppEntitlementOwnersSet, "iga.v1.AppEntitlementOwnersSet", 1;
    EntitlementAliasClaimed => EntitlementAliasClaimed, "iga.v1.EntitlementAliasClaimed", 1;
    EntitlementAliasReleased => EntitlementAliasReleased, "iga.v1.EntitlementAliasReleased", 1;
    PolicyCreated => PolicyCreated, "iga.v1.PolicyCreated", 1;
    PolicyUpdated => PolicyUpdated, "iga.v1.PolicyUpdated", 1;
    PolicyDeleted => PolicyDeleted, "iga.v1.PolicyDeleted", 1;
    AccessRequestCreated => AccessRequestCreated, "iga.v1.AccessRequestCreated", 1;
    RequestApprovalRecorded => RequestApprovalRecorded, "iga.v1.RequestApprovalRecorded", 1;
    RequestPhaseCompleted => RequestPhaseCompleted, "iga.v1.RequestPhaseCompleted", 1;
    RequestApproved => RequestApproved, "iga.v1.RequestApproved", 1;
    RequestRejected => RequestRejected, "iga.v1.RequestRejected", 1;
    RequestCommented => RequestCommented, "iga.v1.RequestCommented", 1;
    RequestReassigned => RequestReassigned, "iga.v1.RequestReassigned", 1;
    RequestModified => RequestModified, "iga.v1.RequestModified", 1;
    RequestCancelled => RequestCancelled, "iga.v1.RequestCancelled", 1;
    RequestFulfilled => RequestFulfilled, "iga.v1.RequestFulfilled", 1;
    AccessRequestOpened => AccessRequestOpened, "iga.v1.AccessRequestOpened", 1;
    AccessRequestClosed => AccessRequestClosed, "iga.v1.AccessRequestClosed", 1;
    GrantIssued => GrantIssued, "iga.v1.GrantIssued", 1;
    GrantDurationChanged => GrantDurationChanged, "iga.v1.GrantDurationChanged", 1;
    GrantEnded => GrantEnded, "iga.v1.GrantEnded", 1;
    WebhookRegistered => WebhookRegistered, "iga.v1.WebhookRegistered", 1;
    WebhookUpdated => WebhookUpdated, "iga.v1.WebhookUpdated", 1;
    WebhookDeleted => WebhookDeleted, "iga.v1.WebhookDeleted", 1;
    DeliveryRequested => DeliveryRequested, "iga.v1.DeliveryRequested", 1;
    DeliveryAttempted => DeliveryAttempted, "iga.v1.DeliveryAttempted", 1;
    DeliverySucceeded => DeliverySucceeded, "iga.v1.DeliverySucceeded", 1;
    DeliveryFailed => DeliveryFailed, "iga.v1.DeliveryFailed", 1;
    DeliveryRetried => DeliveryRetried, "iga.v1.DeliveryRetried", 1;
    ProvisioningTaskOpened => ProvisioningTaskOpened, "iga.v1.ProvisioningTaskOpened", 1;
    ProvisioningTaskCompleted => ProvisioningTaskCompleted, "iga.v1.ProvisioningTaskCompleted", 1;
    ProvisioningTaskRetried => ProvisioningTaskRetried, "iga.v1.ProvisioningTaskRetried", 1;
    ReviewCreated => ReviewCreated, "iga.v1.ReviewCreated", 1;
    ReviewLaunched => ReviewLaunched, "iga.v1.ReviewLaunched", 1;
    ReviewClosed => ReviewClosed, "iga.v1.ReviewClosed", 1;
    ReviewItemOpened => ReviewItemOpened, "iga.v1.ReviewItemOpened", 1;
    ReviewItemDecided => ReviewItemDecided, "iga.v1.ReviewItemDecided", 1;
    ReviewItemReassigned => ReviewItemReassigned, "iga.v1.ReviewItemReassigned", 1;
    ReviewItemsListed => ReviewItemsListed, "iga.v1.ReviewItemsListed", 1;
    ReviewItemCommented => ReviewItemCommented, "iga.v1.ReviewItemCommented", 1;
    AuditCheckpointSigned => AuditCheckpointSigned, "iga.v1.AuditCheckpointSigned", 1;
    AuditCheckpointRequested => AuditCheckpointRequested, "iga.v1.AuditCheckpointRequested", 1;
}

impl DomainEvent {
    /// The event as JSON, for the audit API: the payload's fields in
    /// camelCase, without secrets ([`DomainEvent::without_secrets`]).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.without_secrets()).unwrap_or(serde_json::Value::Null)
    }

    /// The event as it may leave the service (audit API, its stream,
    /// published events, exports): nothing secret or derived from a secret.
    /// That is a token's hash (a weak token could be found from it
    /// offline) and a webhook's sealed secret (sealed, but it is nobody's
    /// business outside).
    pub fn without_secrets(&self) -> std::borrow::Cow<'_, DomainEvent> {
        match self {
            DomainEvent::ApiTokenIssued(e) if !e.token_sha256_hex.is_empty() => {
                std::borrow::Cow::Owned(DomainEvent::ApiTokenIssued(v1::ApiTokenIssued {
                    token_sha256_hex: String::new(),
                    ..e.clone()
                }))
            }
            DomainEvent::WebhookRegistered(e) if !e.secret_sealed.is_empty() => {
                std::borrow::Cow::Owned(DomainEvent::WebhookRegistered(v1::WebhookRegistered {
                    secret_sealed: Vec::new(),
                    ..e.clone()
                }))
            }
            other => std::borrow::Cow::Borrowed(other),
        }
    }

    /// Whether [`DomainEvent::without_secrets`] changes this event.
    pub fn has_secrets(&self) -> bool {
        match self {
            DomainEvent::ApiTokenIssued(e) => !e.token_sha256_hex.is_empty(),
            DomainEvent::WebhookRegistered(e) => !e.secret_sealed.is_empty(),
            _ => false,
        }
    }
}

impl EventEnvelope {
    /// This envelope as it may leave the service: its payload without
    /// secrets ([`DomainEvent::without_secrets`]). An envelope whose payload
    /// cannot be decoded leaves with an empty payload rather than unread.
    pub fn without_secrets(&self) -> std::borrow::Cow<'_, EventEnvelope> {
        match self.decode_event() {
            Ok(event) if !event.has_secrets() => std::borrow::Cow::Borrowed(self),
            Ok(event) => std::borrow::Cow::Owned(EventEnvelope {
                payload: event.without_secrets().encode_payload(),
                ..self.clone()
            }),
            Err(_) => std::borrow::Cow::Owned(EventEnvelope {
                payload: Vec::new(),
                ..self.clone()
            }),
        }
    }

    /// Decodes this envelope's payload.
    pub fn decode_event(&self) -> Result<DomainEvent, DecodeError> {
        DomainEvent::decode(&self.event_type, self.schema_version, &self.payload)
    }

    /// The aggregate type, the part of the stream id before the first `-`.
    pub fn aggregate_type(&self) -> &str {
        self.stream_id.split('-').next().unwrap_or("")
    }
}
