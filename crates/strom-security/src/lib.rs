//! Who is on the other end of a connection, decided without sockets or clocks:
//! SASL mechanisms as state machines fed the client's tokens, JAAS option parsing
//! for their credentials, and the Kafka principal of a TLS client certificate
//! (its subject as Java prints it, then `ssl.principal.mapping.rules`).

pub mod acl;
pub mod jaas;
pub mod principal;
pub mod quota;
pub mod sasl;
pub mod ssl_principal;

pub use principal::KafkaPrincipal;
