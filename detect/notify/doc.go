// Package notify delivers alerts to people: it follows cordon.alerts
// (read committed, so a detection round that was aborted delivers
// nothing) and POSTs each alert that passes a webhook's filters and no
// silence to that webhook, signed with the webhook's HMAC secret.
//
// Every webhook has a consumer group of its own: a receiver that is down
// delays only its own deliveries. A delivery that fails is retried with
// exponential backoff; after the last attempt a dead-letter record (the
// payload, the webhook, the last error) goes to cordon.notify-dead-letters
// and the webhook goes on with the next alert. Delivery is at least once:
// receivers deduplicate by the X-Cordon-Delivery header (the alert id,
// and whether the record raises or retracts it).
//
// Two payload formats: "cordon", the alert as JSON inside an envelope,
// and "chat", a {"text": ...} message for chat incoming webhooks
// (Slack, Mattermost, Rocket.Chat and others take it as is).
package notify
