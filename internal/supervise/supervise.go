// Package supervise runs the parts of a process as one group (on
// github.com/oklog/run): the first part to stop, for any reason, stops
// all the others, and the group reports which part it was.
//
// Invariants:
//   - Every part gets a context that ends when the group stops; a part
//     returns once its context ends.
//   - A part that returns while the group's context is live has failed,
//     even with a nil error (a loop that ended early is as broken as one
//     that returned an error): Run returns a *Stopped naming it. The only
//     clean early end is a part returning Done.
//   - When the group's own context ends (SIGTERM), parts that then return
//     nil or a context error are a clean stop, and Run returns nil.
//   - Run returns only after every part has returned.
package supervise

import (
	"context"
	"errors"
	"fmt"

	"github.com/oklog/run"
)

// Done may be returned by a part whose work is finished and that should
// stop the whole group cleanly (a one-shot demo feed, for example).
var Done = errors.New("done")

// Stopped is the error of a group whose part stopped while it should have
// been running.
type Stopped struct {
	Part string
	Err  error // nil: the part returned without an error
}

func (s *Stopped) Error() string {
	if s.Err == nil {
		return fmt.Sprintf("part %q stopped unexpectedly", s.Part)
	}
	return fmt.Sprintf("part %q stopped: %v", s.Part, s.Err)
}

func (s *Stopped) Unwrap() error { return s.Err }

// Group is a set of parts run together. Create it with New, Add parts,
// then Run it once.
type Group struct {
	ctx    context.Context
	cancel context.CancelFunc
	g      run.Group
}

// New returns an empty group whose parts stop when ctx ends.
func New(ctx context.Context) *Group {
	ctx, cancel := context.WithCancel(ctx)
	return &Group{ctx: ctx, cancel: cancel}
}

// Add adds a part: f runs until its context ends.
func (g *Group) Add(name string, f func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(g.ctx)
	g.g.Add(func() error {
		err := f(ctx)
		switch {
		case errors.Is(err, Done):
			return Done
		case ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)):
			return nil // asked to stop
		}
		return &Stopped{Part: name, Err: err}
	}, func(error) { cancel() })
}

// Run runs the parts until the group's context ends or one part stops, then
// stops the others and waits for them. It returns nil for a clean stop and
// a *Stopped naming the part that stopped the group otherwise.
func (g *Group) Run() error {
	defer g.cancel()
	// The group's own context is a part too, so that its end stops the
	// others.
	g.g.Add(func() error { <-g.ctx.Done(); return nil }, func(error) { g.cancel() })
	err := g.g.Run()
	if errors.Is(err, Done) {
		return nil
	}
	return err
}
