package main

import (
	"context"
	"fmt"
	"sync"
)

// actor is one long-running part of the process. run blocks until ctx is
// done (then returns nil) or until it fails.
type actor struct {
	name string
	run  func(ctx context.Context) error
}

// runGroup runs the actors until the first one returns, for whatever
// reason, then cancels the others and waits for all of them. It returns
// the first actor's error, named after it. This is the shape of
// Prometheus's run.Group, with a context as the interrupt.
func runGroup(ctx context.Context, actors ...actor) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		name string
		err  error
	}
	done := make(chan result, len(actors))
	var wg sync.WaitGroup
	for _, a := range actors {
		wg.Go(func() { done <- result{a.name, a.run(ctx)} })
	}
	first := <-done
	cancel()
	wg.Wait()
	if first.err != nil {
		return fmt.Errorf("%s: %w", first.name, first.err)
	}
	return nil
}
