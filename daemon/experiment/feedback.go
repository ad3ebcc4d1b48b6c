package experiment

import (
	"fmt"
	"net/http"
)

// DefaultFeedbackIDs is how many recent response ids feedback can refer
// to: about 100 bytes each, so 20,000 ids cost about 2 MB; the oldest go
// first. A client rates an answer within minutes of it, not thousands of
// answers later.
const DefaultFeedbackIDs = 20000

type served struct {
	experiment, variant string
	rated               bool
}

// feedbackStore maps recent response ids to the variant that served them.
type feedbackStore struct {
	ids  map[string]*served
	ring []string // insertion order, for eviction
	next int
}

func newFeedbackStore(n int) *feedbackStore {
	return &feedbackStore{ids: make(map[string]*served, n), ring: make([]string, n)}
}

func (f *feedbackStore) add(id string, sv *served) {
	if old := f.ring[f.next]; old != "" {
		delete(f.ids, old)
	}
	f.ring[f.next] = id
	f.next = (f.next + 1) % len(f.ring)
	f.ids[id] = sv
}

// Served records that the answer with response id id came from variant.
func (s *Set) Served(id, experiment, variant string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fb.add(id, &served{experiment: experiment, variant: variant})
}

// Feedback is a client's rating of one answer: a score, thumbs, or both.
type Feedback struct {
	ID string
	// Score is any number on the client's own scale (for example 1 to 5);
	// nil when not given.
	Score *float64
	// Thumbs is "up", "down" or "".
	Thumbs string
}

// FeedbackError is a refused feedback.
type FeedbackError struct {
	Status int
	code   string
	msg    string
}

func (e *FeedbackError) Error() string   { return e.msg }
func (e *FeedbackError) Code() string    { return e.code }
func (e *FeedbackError) HTTPStatus() int { return e.Status }

// Rate records feedback for a recent answer of an experiment. Unknown ids
// (never served by an experiment, or too old) are 404; a second rating of
// one answer is 409.
func (s *Set) Rate(fb Feedback) (experiment, variant string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv, ok := s.fb.ids[fb.ID]
	if !ok {
		return "", "", &FeedbackError{http.StatusNotFound, "not_found", fmt.Sprintf("no recent experiment answer has id %q (feedback covers the last %d answers of experiments)", fb.ID, len(s.fb.ring))}
	}
	if sv.rated {
		return "", "", &FeedbackError{http.StatusConflict, "feedback_exists", fmt.Sprintf("answer %q has feedback already", fb.ID)}
	}
	e, ok := s.exps[sv.experiment]
	if !ok {
		return "", "", &FeedbackError{http.StatusNotFound, "not_found", fmt.Sprintf("experiment %q of answer %q is no longer configured", sv.experiment, fb.ID)}
	}
	v, ok := e.variants[sv.variant]
	if !ok {
		return "", "", &FeedbackError{http.StatusNotFound, "not_found", fmt.Sprintf("variant %q of answer %q is no longer configured", sv.variant, fb.ID)}
	}
	sv.rated = true
	if fb.Score != nil {
		v.score.Add(*fb.Score)
	}
	switch fb.Thumbs {
	case "up":
		v.thumbsUp++
	case "down":
		v.thumbsDown++
	}
	return sv.experiment, sv.variant, nil
}
