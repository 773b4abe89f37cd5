// Package notify delivers Insights events (detector.Insight) to where people
// and tools read them.
//
// It holds the Notifier interface and the notifiers that need nothing but
// the local machine:
//   - Folder writes gzip'd {"Records":[…]} files in the CloudTrail-Insight S3
//     layout under a local directory, with keys derived from the content so
//     that a re-run writes the same keys and bytes;
//   - JSONLines writes one event per line (optionally in an EventBridge
//     envelope) to an io.Writer, e.g. standard output;
//   - Multi fans out to several notifiers.
//
// ReadInsights reads back what Folder wrote (or any folder or file of
// Insights events). Retry with back-off, the disk spool, S3, NATS and chat
// notifiers are not here yet; they will implement the same interface and
// pass the same conformance test (see notify_test.go).
package notify

import (
	"context"
	"errors"
	"fmt"

	"github.com/trailsight/trailsight/detector"
)

// Notifier delivers insight events. Notify may be called from one goroutine
// at a time; it must be idempotent per EventID (re-sending the same events
// writes/sends the same thing) and must not retain ins after it returns.
// Notify returns ctx.Err() (possibly wrapped) when ctx is done before the
// events are delivered. Close flushes and releases resources; Notify after
// Close returns ErrClosed.
type Notifier interface {
	Notify(ctx context.Context, ins []detector.Insight) error
	Close() error
}

// ErrClosed is returned by Notify after Close.
var ErrClosed = errors.New("notify: notifier closed")

// Named is a Notifier with a name for error messages and summaries, e.g.
// "folder out/" or "stdout".
type Named struct {
	Name string
	Notifier
}

type multi []Named

// NewMulti returns a Notifier that hands each call to every one of ns in
// turn, even when some fail, and returns errors.Join of the failures, each
// wrapped with its notifier's name. Close closes every one of ns.
func NewMulti(ns ...Named) Notifier {
	return multi(append([]Named(nil), ns...))
}

func (m multi) Notify(ctx context.Context, ins []detector.Insight) error {
	var errs []error
	for _, n := range m {
		if err := n.Notify(ctx, ins); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (m multi) Close() error {
	var errs []error
	for _, n := range m {
		if err := n.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: close: %w", n.Name, err))
		}
	}
	return errors.Join(errs...)
}
