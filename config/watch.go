package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch timing defaults.
const (
	// DefaultDebounce is the quiet time after the last file event before the
	// file is read: editors and orchestrators write a file in several
	// steps (truncate, write, chmod; or write a temporary file, rename).
	DefaultDebounce = 100 * time.Millisecond
	// DefaultMaxDelay bounds how long a stream of events can postpone the
	// read (a directory that never goes quiet).
	DefaultMaxDelay = 2 * time.Second
	// DefaultPoll is how often the file's fingerprint is compared even
	// without events: inotify misses changes on some bind mounts and on
	// network file systems.
	DefaultPoll = 5 * time.Second
)

// WatchOptions tune a Watcher. The zero value takes the defaults.
type WatchOptions struct {
	Debounce time.Duration // 0: DefaultDebounce
	MaxDelay time.Duration // 0: DefaultMaxDelay
	// Poll is the fingerprint interval; 0: DefaultPoll, negative: no
	// polling.
	Poll time.Duration
	// NoNotify turns fsnotify off (polling only).
	NoNotify bool
	// Initial is the hash (Config.Hash) of the content already in force;
	// the Watcher reports only content that differs from it. Empty: the
	// file's content when the Watcher is set up.
	Initial string
	// OnError learns of problems that do not stop the watch (a directory
	// that cannot be watched, a file that cannot be read); nil ignores them.
	OnError func(error)
}

// Change is a change of the watched file's content.
type Change struct {
	// Hash is the new content's sha256 (as Config.Hash); empty when Deleted.
	Hash string
	// Deleted says the file is gone (or is a dangling symlink).
	Deleted bool
	// Cause says what noticed it: the first file event of the burst
	// ("fsnotify: CREATE /etc/jetai/..data") or "poll".
	Cause string
	// First is when the first event of the burst arrived (for polling:
	// when the poll ran), for latency figures.
	First time.Time
}

// Watcher watches one config file and its drop-in directory (DropInDir):
// a drop-in added, changed or removed is a change of the config. It
// watches the directories, not the files, so it follows how files are
// really replaced:
//
//   - write to a temporary file, then rename it over the file (most editors,
//     config management);
//   - a symlink swap (Kubernetes config maps: jetai.hcl -> ..data/jetai.hcl,
//     and ..data is a symlink replaced by rename); when the file is a
//     symlink into another directory, that directory is watched too;
//   - truncate, then write in place.
//
// Events are debounced (opts.Debounce of quiet, at most opts.MaxDelay), and
// the content's hash decides, so a burst of writes gives one Change and
// events that do not change the content (touch, chmod, other files in the
// directory) give none. An empty file is taken as a save in progress and
// ignored until it has content. A fingerprint poll (opts.Poll) catches what
// inotify misses.
type Watcher struct {
	path     string
	opts     WatchOptions
	fw       *fsnotify.Watcher
	watched  map[string]bool
	last     string // hash last seen, or deletedMark
	onChange func(Change)
	// start is the file's fingerprint when the watch was set up; Run
	// reports it first when it differs from opts.Initial.
	start    string
	startErr error
}

// NewWatcher sets the watch up (so that changes from its return on are
// seen); Run reports them. It fails only when it can watch neither with
// inotify nor by polling. Run must follow, or Close.
func NewWatcher(path string, opts WatchOptions) (*Watcher, error) {
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.Poll == 0 {
		opts.Poll = DefaultPoll
	}
	if opts.OnError == nil {
		opts.OnError = func(error) {}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", path, err)
	}
	w := &Watcher{path: abs, opts: opts, watched: map[string]bool{}, last: opts.Initial}
	if w.last == "" {
		w.last, _ = w.fingerprint()
	}
	if opts.NoNotify {
		if opts.Poll < 0 {
			return nil, fmt.Errorf("watch %s: neither inotify nor polling is enabled", path)
		}
		w.start, w.startErr = w.fingerprint()
		return w, nil
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		if opts.Poll < 0 {
			return nil, fmt.Errorf("watch %s: %w", path, err)
		}
		opts.OnError(fmt.Errorf("watch %s: inotify unavailable, polling every %s only: %w", path, opts.Poll, err))
		w.start, w.startErr = w.fingerprint()
		return w, nil
	}
	w.fw = fw
	w.addWatches()
	w.start, w.startErr = w.fingerprint()
	return w, nil
}

// Close ends the watch; Run closes it itself when it returns.
func (w *Watcher) Close() {
	if w.fw != nil {
		w.fw.Close()
	}
}

// Run reports changes to onChange (one call at a time, from Run's
// goroutine) until ctx ends. It first compares the file as NewWatcher
// found it with opts.Initial, so a change made before the watch was set up
// is reported too; later changes come from events and polls.
func (w *Watcher) Run(ctx context.Context, onChange func(Change)) {
	defer w.Close()
	w.onChange = onChange
	opts := w.opts
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w.fw != nil {
		events, errs = w.fw.Events, w.fw.Errors
	}
	var pollC <-chan time.Time
	if opts.Poll > 0 {
		t := time.NewTicker(opts.Poll)
		defer t.Stop()
		pollC = t.C
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	var pending bool
	var first time.Time
	var cause string
	arm := func(c string) {
		now := time.Now()
		if !pending {
			pending, first, cause = true, now, c
		}
		delay := opts.Debounce
		if limit := first.Add(opts.MaxDelay); now.Add(delay).After(limit) {
			delay = max(limit.Sub(now), 0)
		}
		debounce.Reset(delay)
	}
	w.report(w.start, w.startErr, "start", time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			arm("fsnotify: " + ev.Op.String() + " " + ev.Name)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				arm("fsnotify: event queue overflow")
				continue
			}
			opts.OnError(fmt.Errorf("watch %s: %w", w.path, err))
		case <-debounce.C:
			pending = false
			w.check(cause, first)
		case now := <-pollC:
			if !pending {
				w.check("poll", now)
			}
		}
	}
}

const deletedMark = "deleted"

// errEmpty is an empty file: a save in progress.
var errEmpty = errors.New("empty file")

// fingerprint is the hash of the file's content (following symlinks) and
// its drop-ins', as Config.Hash,
// deletedMark when it does not exist, or an error (errEmpty for an empty
// file). The file is small: hashing it is cheaper than trusting mtimes,
// which coarse or network file systems do not always move.
func (w *Watcher) fingerprint() (string, error) {
	b, err := readLimited(w.path)
	if errors.Is(err, fs.ErrNotExist) {
		return deletedMark, nil
	}
	if err != nil {
		return "", err
	}
	if len(b) == 0 {
		return "", errEmpty
	}
	dropIns, err := readDropIns(w.path)
	if err != nil {
		return "", fmt.Errorf("drop-in directory %s: %w", DropInDir(w.path), err)
	}
	return contentHash(b, dropIns), nil // as Load hashes it
}

// addWatches watches the file's directory and, when the file is a symlink,
// the directory of its target. It runs again on every check, so a
// directory that came back (or a symlink that now points elsewhere) is
// watched again.
func (w *Watcher) addWatches() {
	if w.fw == nil {
		return
	}
	dirs := []string{filepath.Dir(w.path)}
	if real, err := filepath.EvalSymlinks(w.path); err == nil {
		dirs = append(dirs, filepath.Dir(real))
	}
	// The drop-in directory, once it exists: its creation is an event in
	// the file's directory, and the check that follows adds it.
	dropIn := DropInDir(w.path)
	if fi, err := os.Stat(dropIn); err == nil && fi.IsDir() {
		dirs = append(dirs, dropIn)
	}
	for _, d := range dirs {
		if w.watched[d] {
			continue
		}
		if err := w.fw.Add(d); err != nil {
			w.opts.OnError(fmt.Errorf("watch directory %s: %w", d, err))
			continue
		}
		w.watched[d] = true
	}
	// A directory that is gone drops its watch; notice so that it is
	// added again when it comes back.
	live := map[string]bool{}
	for _, d := range w.fw.WatchList() {
		live[d] = true
	}
	for d := range w.watched {
		if !live[d] {
			delete(w.watched, d)
		}
	}
}

func (w *Watcher) check(cause string, first time.Time) {
	w.addWatches()
	h, err := w.fingerprint()
	w.report(h, err, cause, first)
}

func (w *Watcher) report(h string, err error, cause string, first time.Time) {
	switch {
	case errors.Is(err, errEmpty):
		return
	case err != nil:
		w.opts.OnError(fmt.Errorf("read %s: %w", w.path, err))
		return
	case h == w.last:
		return
	}
	w.last = h
	if h == deletedMark {
		w.onChange(Change{Deleted: true, Cause: cause, First: first})
		return
	}
	w.onChange(Change{Hash: h, Cause: cause, First: first})
}
