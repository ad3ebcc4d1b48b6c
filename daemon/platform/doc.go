// Package platform owns the readings of the machine jetaid runs on and the
// policy that reacts to them: thermal zones, memory (MemAvailable, swap,
// pressure stall information), GPU load and frequency from devfreq, power
// rails from the INA3221 hwmon, the board model and L4T release; the
// thermal state machine (normal, throttle, shed) with hysteresis; the
// memory-pressure rule; and the Monitor that polls them and tells an
// Actuator (the model pool, through the daemon) what to do.
//
// Every reader takes a root directory that stands for "/", so that tests
// run on the fake trees under testdata/ as well as on the live /sys and
// /proc. A reader reports what it cannot read (a vanished zone, a garbage
// value) in its result instead of failing: a broken sensor must never stop
// the daemon. It does not know about models, HTTP or metrics names.
package platform
