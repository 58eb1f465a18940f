// Package twiliostub is an HTTP stand-in for the Twilio REST API (Flex,
// Conversations, TaskRouter) for integration tests and the simulator.
//
// Every request is checked against Twilio's own OpenAPI specs (embedded from
// oai/): an unknown operation, a missing required field, a misspelt enum value
// or field name is recorded as a Violation and answered with a Twilio-style
// error, so a test that ends with RequireNoViolations proves the product
// spoke Twilio's API as Twilio describes it. The operations the reactors use
// are backed by small in-memory fakes with state that tests set up and
// inspect; any other valid operation is answered 501 and counted. Faults
// (429/503 with Retry-After, a response lost after the effect, delays) are
// injected per operation ID.
//
// twilio-go has no base-URL setting, so the product reaches the stub through
// an http.Client whose transport rewrites scheme and host to the stub's URL
// and puts the original host (flex-api.twilio.com, conversations.twilio.com,
// taskrouter.twilio.com) in X-Forwarded-Host; the stub picks the spec by that
// header, else by the request's path.
package twiliostub
