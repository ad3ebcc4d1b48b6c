// Package experiment owns A/B experiments between models: the assignment
// of a request to a variant (a stable hash of the experiment and the
// sticky key onto weighted bucket ranges), the per-variant statistics
// (requests, errors, tokens, speed, latency, feedback), the tests that say
// whether a difference is real (confidence intervals, Welch's t-test, the
// two-proportion z-test), the bounded store of response ids that feedback
// refers to, and the bounded queue that runs shadow copies. It does not
// choose models outside an experiment, talk to runners or speak HTTP: the
// API runs the variants it is told to and reports back.
package experiment
