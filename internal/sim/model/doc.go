// Package model is the pure model behind flexstream's Twilio Flex
// simulator (issue 7): a contact centre's conversations, Flex
// interactions and TaskRouter tasks, reservations and workers, driven by
// a Scenario, and the ground truth of which customers were left alone.
//
// The model does no I/O, starts no goroutine and reads no clock: the
// caller passes the time to every method, and randomness comes from
// math/rand/v2 seeded by New's seed, so the same scenario, seed and
// sequence of calls give byte-identical webhooks.
//
// The runner around it drives it:
//
//   - Advance(now) returns the webhooks Twilio would have sent by now, in
//     causal order, each stamped with the time it happened, and the
//     interactions created (to register with the REST stand-in before
//     the webhooks are delivered);
//   - Invited, ChannelUpdated and MessageSent (or MessageCreated) apply
//     the effects of the REST calls the reactors made (validated by the
//     stand-in); the webhooks they cause come out of the next Advance;
//   - Done says when nothing more will happen without an effect, and
//     Truth is the ground truth for the report.
//
// A Model is not safe for concurrent use: guard it with a mutex.
//
// Scenario durations are Twilio time; the model runs them Speed times
// faster (Scenario.Real), and so does every time it compares, including
// the grace period and WhatsApp's 24-hour window.
package model
