package pool

import (
	"context"

	"github.com/jetai/jetai/daemon/runner"
)

// Runner is what the pool needs of a model's runner process. The real one
// is *runner.Process; tests of eviction, draining and swaps use a fake.
type Runner interface {
	// Load hands the runner its model: every runner starts without one
	// (a warm spare is one that waits for it).
	Load(opts runner.Options) error
	// WaitSpare waits until the runner has initialised its engine and
	// waits for a model.
	WaitSpare(ctx context.Context) error
	// WaitReady waits for the model to load (killing the runner when ctx
	// ends first).
	WaitReady(ctx context.Context) (runner.ModelInfo, error)
	Progress() float32 // load progress in [0,1]
	Pid() int
	// Done is closed when the process has exited; Exited then says why.
	Done() <-chan struct{}
	Exited() (bool, error)
	// Cause is the log line that says why the runner died ("" when none).
	Cause() string
	RSS() (uint64, error)

	Complete(ctx context.Context, req runner.Request, onText func(string)) (runner.Result, error)
	Embed(ctx context.Context, input string) (runner.EmbedResult, error)
	Health(ctx context.Context) (runner.Health, error)
	SetThreads(ctx context.Context, n int) error
	StartThreads() int
	Park(ctx context.Context, req runner.ParkRequest) (runner.ParkResult, error)
	Restore(ctx context.Context, req runner.RestoreRequest) (runner.RestoreResult, error)

	// Stop asks the runner to exit, killing it at ctx's end; Kill ends it
	// at once.
	Stop(ctx context.Context) error
	Kill()
}

// StartRunner starts a runner process with the process settings of o
// (runner.Options.ProcessKey); it returns once the process runs.
// Runner.Load hands it its model.
type StartRunner func(runner.Options) (Runner, error)

// startProcess is the real StartRunner.
func startProcess(o runner.Options) (Runner, error) {
	proc, err := runner.Spawn(o)
	if err != nil {
		return nil, err
	}
	return proc, nil
}

var _ Runner = (*runner.Process)(nil)
