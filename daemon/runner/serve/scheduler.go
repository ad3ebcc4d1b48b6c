package serve

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jetai/jetai/daemon/engine"
	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/daemon/runner/speculate"
)

// promptChunkWhileGenerating caps the prompt tokens added to a decode step
// while other slots are generating, so a long prompt delays their next
// token by one short step instead of one long one.
const promptChunkWhileGenerating = 128

// samplerHistory is how many prompt tokens feed the repetition penalty.
const samplerHistory = 256

var (
	errBusy     = errors.New("runner queue is full")
	errStopping = errors.New("runner is stopping")
)

// job is one request on its way through the scheduler.
type job struct {
	ctx       context.Context
	tokens    []int
	sampler   *engine.Sampler // nil for embeddings
	maxTokens int
	stops     []string
	embed     bool
	ignoreEOS bool
	noSpec    bool   // the request turned speculative decoding off
	code      string // set with a failure the request caused (finishErr)
	out       *outbox
	arrived   time.Time
	lazy      *lazyGrammar // tool_choice auto: the call grammar waits for its trigger
	logprobs  int          // alternatives per token to report; -1: no logprobs
	// images are the embeddings of the image rows in tokens, by hash
	// (vision.go); imageTokens counts those rows.
	images      map[uint64]*engine.ImageEmbedding
	imageTokens int
	encodeMS    float64 // encoding the images took, before the job was submitted
}

// outbox hands a job's output from the decode loop to its HTTP handler
// without ever blocking the loop: text accumulates until the handler takes
// it, so a slow reader coalesces tokens instead of stalling the batch.
// The loop decides when the handler wakes (see scheduler.flush): a wake is
// a frame, and frames are what cost.
type outbox struct {
	mu        sync.Mutex
	text      strings.Builder
	done      bool
	final     runner.Frame
	embedding []float32
	logprobs  []runner.TokenLogprob
	notify    chan struct{}
}

func newOutbox() *outbox { return &outbox{notify: make(chan struct{}, 1)} }

// push adds text without waking the handler.
func (o *outbox) push(s string) {
	if s == "" {
		return
	}
	o.mu.Lock()
	o.text.WriteString(s)
	o.mu.Unlock()
}

func (o *outbox) finish(f runner.Frame) {
	o.mu.Lock()
	o.done = true
	o.final = f
	o.mu.Unlock()
	o.wake()
}

func (o *outbox) wake() {
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

// take returns the text gathered since the last call and, once the job is
// over, its final frame.
func (o *outbox) take() (string, bool, runner.Frame) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.text.String()
	o.text.Reset()
	return s, o.done, o.final
}

// slot is one sequence of the context.
type slot struct {
	seq      int
	cache    []int // tokens whose KV is in the cache, in order
	lastUsed time.Time

	job       *job
	pending   []int // prompt tokens still to decode
	next      int   // sampled token to feed next step, -1 for none
	iBatch    int   // batch index whose logits to sample, -1 for none
	fed       bool  // this step's batch holds the slot's next token
	spec      specSlot
	generated int
	stream    engine.TextStream
	held      string // text that may be the start of a stop string
	unsent    bool   // text pushed since the handler was last woken
	framed    bool   // the job's first frame has been sent
	started   time.Time
	firstTok  time.Time
	timings   runner.Timings
	// unwatch stops the watch that interrupts a running decode when the
	// job's context ends.
	unwatch func() bool

	// before is the slot's state before the current step's batch, to
	// put back when the decode is interrupted.
	before struct {
		cached  int
		pending []int
		next    int
	}
}

// scheduler runs the decode loop: one goroutine owns the context and every
// slot; handlers talk to it through jobs and control functions.
type scheduler struct {
	lctx    *engine.Context
	model   *engine.Model
	slotCtx int
	slots   []*slot
	batch   *engine.Batch
	rotate  int
	// vision encodes images (nil without a projector); ebatch holds the
	// image rows of a step (vision.go).
	vision *vision
	ebatch *engine.EmbedBatch
	// imageChunk is how many image rows a step decodes while other slots
	// generate (sizeImageChunk).
	imageChunk int

	lastFlush time.Time // when the loop last woke handlers with text

	jobs     chan *job
	control  chan func()
	queue    []*job
	admitted atomic.Int32
	limit    int32

	active, queued, threads atomic.Int32
	kvUsed                  atomic.Int32 // KV cells of running requests (publishCounts)
	startThreads            int

	spec    specOptions
	drafter *drafter // nil without a draft model
	// baseStep is the moving average of a decode of only next tokens, by
	// the number of them; costs the decode time of steps with drafts over
	// it, by the drafts in the step. See stepTook.
	baseStep          []time.Duration
	baseAge           []int // steps with drafts since baseStep was last measured
	costs             speculate.Costs
	drafted, accepted atomic.Int64 // speculative tokens since the start
	maxDraft          atomic.Int32 // spec.maxDraft, for /health
	ngram             atomic.Bool  // spec.ngram, for /health

	quit          chan struct{}
	stopped       chan struct{}
	stopOnce      sync.Once
	stopRequested chan struct{}
	requestOnce   sync.Once
}

func newScheduler(lctx *engine.Context, queue int) (*scheduler, error) {
	opts := lctx.Options()
	b, err := engine.NewBatch(opts.BatchSize)
	if err != nil {
		return nil, err
	}
	if queue < 0 {
		queue = 0
	}
	s := &scheduler{
		lctx:          lctx,
		model:         lctx.Model(),
		slotCtx:       opts.SlotContext,
		batch:         b,
		jobs:          make(chan *job, opts.Slots+queue),
		control:       make(chan func()),
		limit:         int32(opts.Slots + queue),
		imageChunk:    firstImageChunk,
		quit:          make(chan struct{}),
		stopped:       make(chan struct{}),
		stopRequested: make(chan struct{}),
	}
	s.threads.Store(int32(lctx.Threads()))
	s.startThreads = lctx.Threads()
	for i := range opts.Slots {
		s.slots = append(s.slots, &slot{seq: i, next: -1, iBatch: -1})
	}
	return s, nil
}

// submit hands a job to the loop, or refuses it when the slots and the
// queue are full.
func (s *scheduler) submit(j *job) error {
	if s.admitted.Add(1) > s.limit {
		s.admitted.Add(-1)
		return errBusy
	}
	// Stopping first: the select below picks at random among ready cases,
	// and a job sent after the loop's last drain would wait for nobody
	// until the process exits.
	select {
	case <-s.quit:
		s.admitted.Add(-1)
		return errStopping
	default:
	}
	select {
	case s.jobs <- j:
		return nil
	case <-s.quit:
		s.admitted.Add(-1)
		return errStopping
	}
}

// setThreads changes the context's thread count between two decode steps.
func (s *scheduler) setThreads(n int) error {
	return s.do(func() {
		s.lctx.SetThreads(n)
		if s.drafter != nil {
			s.drafter.lctx.SetThreads(n)
		}
		s.threads.Store(int32(s.lctx.Threads()))
	})
}

// do runs f on the loop goroutine and waits for it.
func (s *scheduler) do(f func()) error {
	done := make(chan struct{})
	select {
	case s.control <- func() { f(); close(done) }:
	case <-s.quit:
		return errStopping
	}
	select {
	case <-done:
		return nil
	case <-s.stopped:
		return errStopping
	}
}

// stop ends the loop; jobs in flight finish with an error.
func (s *scheduler) stop() {
	s.stopOnce.Do(func() { close(s.quit) })
	<-s.stopped
}

// requestStop asks Run to shut the runner down.
func (s *scheduler) requestStop() {
	s.requestOnce.Do(func() { close(s.stopRequested) })
}

func (s *scheduler) loop() {
	runtime.LockOSThread()
	defer close(s.stopped)
	defer s.batch.Free()
	defer func() {
		if s.ebatch != nil {
			s.ebatch.Free()
		}
	}()
	for {
		if s.idle() {
			select {
			case j := <-s.jobs:
				s.queue = append(s.queue, j)
			case f := <-s.control:
				f()
				continue
			case <-s.quit:
				s.failAll()
				return
			}
		}
	drain:
		for {
			select {
			case j := <-s.jobs:
				s.queue = append(s.queue, j)
			case f := <-s.control:
				f()
			case <-s.quit:
				s.failAll()
				return
			default:
				break drain
			}
		}
		s.reapCancelled()
		s.assign()
		s.shareThreads()
		s.stepImages()
		s.step()
		s.flush(time.Now())
		s.publishCounts()
	}
}

func (s *scheduler) idle() bool {
	if len(s.queue) > 0 {
		return false
	}
	for _, sl := range s.slots {
		if sl.job != nil {
			return false
		}
	}
	s.publishCounts()
	return true
}

func (s *scheduler) publishCounts() {
	n, kv := 0, 0
	for _, sl := range s.slots {
		if sl.job != nil {
			n++
			kv += len(sl.cache)
		}
	}
	s.active.Store(int32(n))
	s.kvUsed.Store(int32(kv))
	s.queued.Store(int32(len(s.queue)))
}

func (s *scheduler) failAll() {
	for _, sl := range s.slots {
		if sl.job != nil {
			s.finish(sl, runner.FinishError, errStopping.Error())
		}
	}
	for _, j := range s.queue {
		s.reject(j, runner.FinishError, errStopping.Error())
	}
	s.queue = nil
	for {
		select {
		case j := <-s.jobs:
			s.reject(j, runner.FinishError, errStopping.Error())
		default:
			s.publishCounts()
			return
		}
	}
}

// reject ends a job that never got a slot.
func (s *scheduler) reject(j *job, reason, msg string) {
	if j.sampler != nil {
		j.sampler.Close()
	}
	j.out.finish(runner.Frame{Done: true, FinishReason: reason, Error: msg,
		Timings: &runner.Timings{PromptTokens: len(j.tokens), QueueMS: runner.Ms(time.Since(j.arrived)), Slot: -1}})
	s.admitted.Add(-1)
}

func (s *scheduler) reapCancelled() {
	for _, sl := range s.slots {
		if sl.job != nil && sl.job.ctx.Err() != nil {
			s.finish(sl, runner.FinishCancelled, "")
		}
	}
	kept := s.queue[:0]
	for _, j := range s.queue {
		if j.ctx.Err() != nil {
			s.reject(j, runner.FinishCancelled, "")
			continue
		}
		kept = append(kept, j)
	}
	s.queue = kept
}

// assign gives waiting jobs free slots, in arrival order. A generation goes
// to the free slot whose cache shares the longest prefix with its prompt
// (least recently used among equals, so other caches survive longer).
func (s *scheduler) assign() {
	for len(s.queue) > 0 {
		j := s.queue[0]
		var best *slot
		bestLen := -1
		for _, sl := range s.slots {
			if sl.job != nil {
				continue
			}
			n := 0
			if !j.embed {
				n = commonPrefix(sl.cache, j.tokens)
			}
			if n > bestLen || (n == bestLen && sl.lastUsed.Before(best.lastUsed)) {
				best, bestLen = sl, n
			}
		}
		if best == nil {
			return
		}
		s.queue = s.queue[1:]
		if j.embed {
			s.runEmbed(best, j)
			continue
		}
		s.start(best, j, bestLen)
	}
}

func commonPrefix(a, b []int) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

func (s *scheduler) start(sl *slot, j *job, reuse int) {
	// At least the last prompt token is decoded again: its logits are needed.
	if reuse >= len(j.tokens) {
		reuse = len(j.tokens) - 1
	}
	if reuse < len(sl.cache) {
		if !s.lctx.RemoveFrom(sl.seq, reuse) {
			s.lctx.RemoveFrom(sl.seq, 0)
			reuse = 0
		}
		sl.cache = sl.cache[:reuse]
	}
	now := time.Now()
	sl.job = j
	sl.pending = j.tokens[reuse:]
	sl.next, sl.iBatch, sl.generated = -1, -1, 0
	sl.stream.Reset()
	sl.held = ""
	sl.unsent, sl.framed = false, false
	sl.started = now
	sl.firstTok = time.Time{}
	sl.timings = runner.Timings{
		PromptTokens: len(j.tokens),
		ImageTokens:  j.imageTokens,
		EncodeMS:     j.encodeMS,
		CachedTokens: reuse,
		QueueMS:      runner.Ms(now.Sub(j.arrived)),
		Slot:         sl.seq,
	}
	hist := j.tokens
	if len(hist) > samplerHistory {
		hist = hist[len(hist)-samplerHistory:]
	}
	for _, t := range hist {
		if !isImageRow(t) {
			j.sampler.Accept(t)
		}
	}
	// A client that goes away stops the decode in progress instead of
	// waiting for the end of the step: a long prompt's batch can take
	// seconds on a big model.
	sl.unwatch = context.AfterFunc(j.ctx, s.lctx.Interrupt)
	s.startSpec(sl, j)
}

func (s *scheduler) runEmbed(sl *slot, j *job) {
	sl.cache = sl.cache[:0]
	sl.lastUsed = time.Now()
	e, err := s.lctx.Embed(j.tokens, sl.seq)
	if err != nil {
		s.reject(j, runner.FinishError, err.Error())
		return
	}
	j.out.mu.Lock()
	j.out.embedding = e
	j.out.mu.Unlock()
	j.out.finish(runner.Frame{Done: true, FinishReason: runner.FinishStop, Timings: &runner.Timings{PromptTokens: len(j.tokens), Slot: sl.seq}})
	s.admitted.Add(-1)
}

// step builds one batch from every active slot, decodes it and samples.
func (s *scheduler) step() {
	b := s.batch
	b.Clear()
	generating := 0
	for _, sl := range s.slots {
		sl.before.cached, sl.before.pending, sl.before.next = len(sl.cache), sl.pending, sl.next
		sl.fed = false
	}
	for _, sl := range s.slots {
		if sl.job != nil && sl.next >= 0 {
			sl.iBatch = b.Add(sl.next, len(sl.cache), sl.seq, true)
			sl.cache = append(sl.cache, sl.next)
			sl.next = -1
			sl.fed = true
			generating++
		}
	}
	s.addDrafts(generating)
	budget := b.Cap() - b.Len()
	if generating > 0 {
		budget = min(budget, promptChunkWhileGenerating)
	}
	n := len(s.slots)
	s.rotate = (s.rotate + 1) % n
	for k := range n {
		sl := s.slots[(s.rotate+k)%n]
		if sl.job == nil || len(sl.pending) == 0 || budget <= 0 || isImageRow(sl.pending[0]) {
			continue
		}
		// Text up to the next image row: stepImages decodes the rows.
		take := 0
		for take < len(sl.pending) && take < budget && !isImageRow(sl.pending[take]) {
			take++
		}
		last := take == len(sl.pending)
		pos := len(sl.cache)
		for i := range take {
			idx := b.Add(sl.pending[i], pos+i, sl.seq, last && i == take-1)
			if last && i == take-1 {
				sl.iBatch = idx
			}
		}
		sl.cache = append(sl.cache, sl.pending[:take]...)
		sl.pending = sl.pending[take:]
		budget -= take
	}
	if b.Len() == 0 {
		return
	}
	t0 := time.Now()
	err := s.lctx.DecodeInterruptible(b)
	s.stepTook(time.Since(t0), generating, b.Len())
	if errors.Is(err, engine.ErrInterrupted) {
		// A job was cancelled: llama.cpp has put the KV cache back, the
		// slots go back to where they were, the next loop reaps the
		// cancelled job and the others decode again.
		for _, sl := range s.slots {
			if sl.job != nil {
				s.lctx.RemoveFrom(sl.seq, sl.before.cached)
				sl.cache = sl.cache[:sl.before.cached]
				sl.pending, sl.next, sl.iBatch = sl.before.pending, sl.before.next, -1
			}
		}
		return
	}
	if err != nil {
		// The cache state of the slots in this batch is unknown now: drop it.
		for _, sl := range s.slots {
			if sl.job != nil {
				s.lctx.RemoveFrom(sl.seq, 0)
				sl.cache = sl.cache[:0]
				s.finish(sl, runner.FinishError, "decode: "+err.Error())
			}
		}
		return
	}
	for _, sl := range s.slots {
		if sl.job != nil && sl.iBatch >= 0 {
			s.sample(sl)
		}
	}
}

// sample draws the slot's next token from the logits at its batch index
// and, where the slot drafted, walks on through the drafts while the draws
// equal them (see speculate.go).
func (s *scheduler) sample(sl *slot) {
	idx := sl.iBatch
	sl.iBatch = -1
	draft := sl.spec.draft
	sl.timings.DraftedTokens += len(draft)
	for i := 0; ; i++ {
		tok, ok := s.sampleAt(sl, idx)
		if !ok {
			s.verified(sl, i)
			return
		}
		if i < len(draft) && tok == draft[i] {
			// The draft's KV entry is the token just drawn: keep it, and
			// draw the next token from its logits.
			sl.cache = append(sl.cache, tok)
			sl.timings.AcceptedTokens++
			idx = sl.spec.idx[i]
			continue
		}
		s.verified(sl, i)
		sl.next = tok
		return
	}
}

// sampleAt draws one token from the logits at batch index idx and hands
// it to the job; false when that ended the job.
func (s *scheduler) sampleAt(sl *slot, idx int) (int, bool) {
	j := sl.job
	if j.ignoreEOS {
		s.lctx.Ban(idx, s.model.EOGTokens())
	}
	tok, err := j.sampler.Sample(s.lctx, idx)
	switch {
	case errors.Is(err, engine.ErrGrammarComplete):
		// ignore_eos under a grammar that is whole: nothing more can be
		// generated, and the output is complete.
		s.finish(sl, runner.FinishStop, "")
		return -1, false
	case err != nil:
		s.finishErr(sl, runner.CodeInvalidGrammar, err.Error())
		return -1, false
	}
	now := time.Now()
	if sl.generated == 0 {
		sl.firstTok = now
		sl.timings.PromptMS = runner.Ms(now.Sub(sl.started))
		sl.timings.FirstTokenMS = runner.Ms(now.Sub(j.arrived))
	}
	if s.model.IsEOG(tok) {
		s.finish(sl, runner.FinishStop, "")
		return -1, false
	}
	sl.generated++
	if err := s.afterSample(sl, idx, tok); err != nil {
		s.finishErr(sl, runner.CodeInvalidGrammar, err.Error())
		return -1, false
	}
	if s.emit(sl, sl.stream.Push(s.model.Piece(tok))) {
		s.finish(sl, runner.FinishStop, "")
		return -1, false
	}
	if (j.maxTokens > 0 && sl.generated >= j.maxTokens) || len(sl.cache)+1 > s.slotCtx {
		s.finish(sl, runner.FinishLength, "")
		return -1, false
	}
	return tok, true
}

// flush wakes the handlers of slots with new text, all at once and at most
// once per frame interval, so that the frames of every stream leave
// together between two decode steps. Each wake costs a goroutine hand-off
// in this process, a write, and a wake-up of the reader's process; on a
// small box whose cores all run llama.cpp's threads, every one of them
// stalls a spinning barrier, so at high token rates they are gathered: one
// burst per interval instead of one per token per stream. A job's first
// text leaves at once (time to first token), and a finished job's handler
// is woken by finish. At the rates of real models (steps longer than the
// interval) every step's tokens still leave at the end of that step.
func (s *scheduler) flush(now time.Time) {
	active := 0
	for _, sl := range s.slots {
		if sl.job != nil {
			active++
		}
	}
	due := now.Sub(s.lastFlush) >= frameInterval(active)
	woke := false
	for _, sl := range s.slots {
		if sl.job == nil || !sl.unsent || (!due && sl.framed) {
			continue
		}
		sl.job.out.wake()
		sl.unsent, sl.framed = false, true
		woke = true
	}
	if due && woke {
		s.lastFlush = now
	}
}

// frameInterval is the shortest time between two bursts of frames with
// active streams: it grows by perStreamFrameBudget per stream, which holds
// the runner to about 1,000 frames/s in all.
func frameInterval(active int) time.Duration {
	return max(minFrameInterval, time.Duration(active)*perStreamFrameBudget)
}

// emit sends text to the job, holding back anything that may be the start
// of a stop string. It reports whether a stop string was found; the text
// before it is sent and the stop string itself is not.
func (s *scheduler) emit(sl *slot, text string) bool {
	stops := sl.job.stops
	if len(stops) == 0 {
		s.send(sl, text)
		return false
	}
	sl.held += text
	cut := -1
	for _, st := range stops {
		if i := strings.Index(sl.held, st); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut >= 0 {
		s.send(sl, sl.held[:cut])
		sl.held = ""
		return true
	}
	keep := 0
	for _, st := range stops {
		for k := min(len(st)-1, len(sl.held)); k > keep; k-- {
			if strings.HasSuffix(sl.held, st[:k]) {
				keep = k
				break
			}
		}
	}
	s.send(sl, sl.held[:len(sl.held)-keep])
	sl.held = sl.held[len(sl.held)-keep:]
	return false
}

// send hands text to the job's outbox; flush wakes its handler later.
func (s *scheduler) send(sl *slot, text string) {
	if text != "" {
		sl.job.out.push(text)
		sl.unsent = true
	}
}

// finish ends the slot's job and frees the slot; its cache stays for
// prefix reuse.
// finishErr ends the slot's job with an error that the request caused;
// code names it for the daemon.
func (s *scheduler) finishErr(sl *slot, code, msg string) {
	sl.job.code = code
	s.finish(sl, runner.FinishError, msg)
}

func (s *scheduler) finish(sl *slot, reason, msg string) {
	j := sl.job
	now := time.Now()
	if reason != runner.FinishCancelled && reason != runner.FinishError {
		j.out.push(sl.held + sl.stream.Flush())
	}
	sl.held = ""
	sl.pending = nil
	sl.next, sl.iBatch = -1, -1
	t := sl.timings
	t.GeneratedTokens = sl.generated
	if !sl.firstTok.IsZero() {
		t.GenerationMS = runner.Ms(now.Sub(sl.firstTok))
	} else {
		t.PromptMS = runner.Ms(now.Sub(sl.started))
	}
	j.sampler.Close()
	if sl.unwatch != nil {
		sl.unwatch()
		sl.unwatch = nil
	}
	j.out.finish(runner.Frame{Done: true, FinishReason: reason, Error: msg, Code: j.code, Timings: &t})
	sl.job = nil
	sl.lastUsed = now
	s.admitted.Add(-1)
}
