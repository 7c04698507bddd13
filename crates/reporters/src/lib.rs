//! Status targets: mail, IRC, HTTP push, Gerrit, forge statuses, on a durable outbox
