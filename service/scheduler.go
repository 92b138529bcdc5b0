package service

import (
	"context"
	"sync"
)

// Scheduler runs queued jobs with bounded concurrency, serving operators
// round robin: each worker that frees up takes the next job of the next
// operator that has one, so an operator's long batch delays another's job by
// at most one job per worker. A job id is held at most once, queued or
// running. Safe for concurrent use.
type Scheduler struct {
	run     func(ctx context.Context, id string)
	workers int

	mu      sync.Mutex
	queues  map[string][]string // per operator, FIFO
	ring    []string            // operators in the order they first queued
	next    int                 // ring position to serve next
	held    map[string]bool     // queued or running
	active  map[string]bool     // taken by a worker
	running int
	wake    chan struct{}
	closed  bool

	wg sync.WaitGroup
}

// NewScheduler returns a scheduler of workers concurrent runs of run.
func NewScheduler(workers int, run func(ctx context.Context, id string)) *Scheduler {
	if workers < 1 {
		workers = 1
	}
	return &Scheduler{run: run, workers: workers, queues: map[string][]string{}, held: map[string]bool{}, active: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// Start starts the workers; they stop when ctx ends (a running job sees
// ctx's cancellation) or after Stop.
func (s *Scheduler) Start(ctx context.Context) {
	for range s.workers {
		s.wg.Add(1)
		go s.work(ctx)
	}
}

// Stop stops taking jobs and waits for the workers; jobs still queued stay
// admitted in the store and are queued again on the next start.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.signal()
	s.wg.Wait()
}

// Enqueue queues a job of operator; a job already held is not queued twice.
func (s *Scheduler) Enqueue(operator, id string) bool {
	s.mu.Lock()
	if s.held[id] || s.closed {
		s.mu.Unlock()
		return false
	}
	s.held[id] = true
	if _, ok := s.queues[operator]; !ok {
		s.ring = append(s.ring, operator)
	}
	s.queues[operator] = append(s.queues[operator], id)
	s.mu.Unlock()
	s.signal()
	return true
}

// Remove drops a queued job (cancelled before it ran). It reports whether it
// was queued.
func (s *Scheduler) Remove(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for op, q := range s.queues {
		for i, x := range q {
			if x == id {
				s.queues[op] = append(q[:i:i], q[i+1:]...)
				delete(s.held, id)
				return true
			}
		}
	}
	return false
}

// Position returns a queued job's place (1 is next) or 0.
func (s *Scheduler) Position(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Simulate the round robin without taking anything.
	idx := map[string]int{}
	pos := 0
	for {
		progressed := false
		for k := range s.ring {
			op := s.ring[(s.next+k)%len(s.ring)]
			q := s.queues[op]
			if idx[op] < len(q) {
				pos++
				if q[idx[op]] == id {
					return pos
				}
				idx[op]++
				progressed = true
			}
		}
		if !progressed {
			return 0
		}
	}
}

// Taken reports whether a worker has taken job id (it is starting or
// running).
func (s *Scheduler) Taken(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active[id]
}

// Stats returns the queued and running counts.
func (s *Scheduler) Stats() (queued, running int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.queues {
		queued += len(q)
	}
	return queued, s.running
}

func (s *Scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take pops the next job in round-robin order.
func (s *Scheduler) take() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.ring {
		i := (s.next + k) % len(s.ring)
		op := s.ring[i]
		if q := s.queues[op]; len(q) > 0 {
			s.queues[op] = q[1:]
			s.next = (i + 1) % len(s.ring)
			s.running++
			s.active[q[0]] = true
			return q[0], true
		}
	}
	return "", false
}

func (s *Scheduler) done(id string) {
	s.mu.Lock()
	delete(s.held, id)
	delete(s.active, id)
	s.running--
	s.mu.Unlock()
}

func (s *Scheduler) work(ctx context.Context) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed || ctx.Err() != nil {
			s.signal() // pass the wake-up on to the next worker
			return
		}
		id, ok := s.take()
		if !ok {
			select {
			case <-s.wake:
			case <-ctx.Done():
			}
			continue
		}
		s.signal() // another worker may take the next job
		s.run(ctx, id)
		s.done(id)
	}
}
