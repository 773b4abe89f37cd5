package stream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
)

// Batch is one decoded file.
type Batch struct {
	File   File
	Events []Event  // may be non-empty with Err set: the lines decoded before a syntax error
	Raw    [][]byte // from DecodeFilesRaw: Raw[i] is Events[i]'s record as it stands in the file
	Stats  DocStats
	Err    error // a per-file failure: open, read, gunzip, syntax, not CloudTrail
}

// Release hands b.Events back for reuse by DecodeFiles. Calling it is
// optional (without it the garbage collector reclaims the slice); after it,
// b.Events must not be used, nor any copy of the slice header. The Events
// themselves may have been copied out before: they are values.
func (b *Batch) Release() {
	if cap(b.Events) > 0 && cap(b.Events) <= 1<<20 {
		s := b.Events[:0]
		eventsPool.Put(&s)
	}
	b.Events = nil
}

var (
	eventsPool sync.Pool // *[]Event
	bufPool    = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

func getEvents() []Event {
	if p, ok := eventsPool.Get().(*[]Event); ok {
		return (*p)[:0]
	}
	return make([]Event, 0, 1024)
}

// OpenFile opens a local file; it is the open function for ListDir's files.
func OpenFile(f File) (io.ReadCloser, error) { return os.Open(f.Path) }

// DecodeFiles decodes files with workers goroutines (0 = GOMAXPROCS) and
// sends one Batch per file on out, in the order of files, while decoding
// ahead in parallel: at most 4*workers files are in flight (read, decoded or
// waiting to be sent), so memory stays flat. open abstracts the storage
// (OpenFile for folders). Events with an empty Account or Region get them
// from the File. A per-file failure goes into Batch.Err and never stops the
// run. DecodeFiles does not close out. It returns ctx.Err() if ctx is
// cancelled (some batches are then not sent), nil otherwise; every
// goroutine it started has ended when it returns.
func DecodeFiles(ctx context.Context, files []File, open func(File) (io.ReadCloser, error), workers int, out chan<- Batch) error {
	return decodeFiles(ctx, files, open, workers, out, false)
}

// DecodeFilesRaw is DecodeFiles decoding with Decoder.DecodeRaw: each
// Batch also holds every event's record as it stands in the file (Raw), for
// those who pass records on (publish).
func DecodeFilesRaw(ctx context.Context, files []File, open func(File) (io.ReadCloser, error), workers int, out chan<- Batch) error {
	return decodeFiles(ctx, files, open, workers, out, true)
}

func decodeFiles(ctx context.Context, files []File, open func(File) (io.ReadCloser, error), workers int, out chan<- Batch, raw bool) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	window := 4 * workers
	if window > len(files) {
		window = len(files)
	}
	if window == 0 {
		return ctx.Err()
	}
	// Job i writes its result into slots[i%window]; the producer starts job i
	// only after batch i-window has been sent (a token per slot), so a slot
	// never holds two results.
	slots := make([]chan Batch, window)
	for i := range slots {
		slots[i] = make(chan Batch, 1)
	}
	tokens := make(chan struct{}, window)
	for range window {
		tokens <- struct{}{}
	}
	jobs := make(chan int)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // producer
		defer wg.Done()
		defer close(jobs)
		for i := range files {
			select {
			case <-tokens:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dec := NewDecoder()
			for i := range jobs {
				slots[i%window] <- decodeFile(ctx, dec, files[i], open, raw)
			}
		}()
	}
	var err error
	for i := range files {
		var b Batch
		select {
		case b = <-slots[i%window]:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			err = ctx.Err()
			break
		}
		select {
		case out <- b:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			break
		}
		tokens <- struct{}{}
	}
	cancel()
	wg.Wait()
	return err
}

// ReadError is a failure to open or read a file — the storage's doing,
// which may pass (a network error, a file being replaced) — as opposed to
// a file that was read whole and is bad. Batch.Err holds one for such
// failures.
type ReadError struct {
	Op   string // "open" or "read"
	Path string
	Err  error
}

func (e *ReadError) Error() string { return "stream: " + e.Op + " " + e.Path + ": " + e.Err.Error() }

func (e *ReadError) Unwrap() error { return e.Err }

// decodeFile reads and decodes one file.
func decodeFile(ctx context.Context, dec *Decoder, f File, open func(File) (io.ReadCloser, error), raw bool) Batch {
	b := Batch{File: f}
	if ctx.Err() != nil {
		b.Err = ctx.Err()
		return b
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 64<<20 {
			bufPool.Put(buf)
		}
	}()
	if err := readFile(dec, f, open, buf); err != nil {
		b.Err = err
		return b
	}
	var (
		events []Event
		st     DocStats
		err    error
	)
	if raw {
		events = getEvents()
		st, err = dec.DecodeRaw(buf.Bytes(), func(ev Event, r []byte) error {
			events = append(events, ev)
			b.Raw = append(b.Raw, bytes.Clone(r)) // r is in buffers reused by the next file
			return nil
		})
	} else {
		events, st, err = dec.Decode(buf.Bytes(), getEvents())
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", f.Path, err)
	}
	if f.Account != "" || f.Region != "" {
		for i := range events {
			e := &events[i]
			if e.Account == "" {
				e.Account = f.Account
			}
			if e.Region == "" {
				e.Region = f.Region
			}
		}
	}
	b.Events, b.Stats, b.Err = events, st, err
	return b
}

func readFile(dec *Decoder, f File, open func(File) (io.ReadCloser, error), buf *bytes.Buffer) error {
	rc, err := open(f)
	if err != nil {
		return &ReadError{Op: "open", Path: f.Path, Err: err}
	}
	defer rc.Close()
	if f.Size > 0 && f.Size < dec.MaxSize {
		buf.Grow(int(f.Size) + bytes.MinRead)
	}
	n, err := buf.ReadFrom(io.LimitReader(rc, dec.MaxSize+1))
	if err != nil {
		return &ReadError{Op: "read", Path: f.Path, Err: err}
	}
	if n > dec.MaxSize {
		return fmt.Errorf("stream: read %s: more than %d bytes: %w", f.Path, dec.MaxSize, ErrTooLarge)
	}
	return nil
}
