package stream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
)

// ChunkSize is the number of events after which ReadStream calls fn.
const ChunkSize = 4096

// ReadStream decodes a possibly endless stream (standard input): gzip is
// sniffed (concatenated gzip members are read on); inside, JSON lines,
// EventBridge envelope lines, or {"Records":…} documents (pretty or compact)
// one after another. It calls fn with events in chunks: every ChunkSize
// events, and whenever the input pauses (no complete document is ready), so
// a slow stream is not held back. st counts the records of the chunk; a bad
// line or document is counted in st (Records and BadRecords, with its
// reason), never fatal. fn must not keep events after it returns (the slice
// is reused); an error from fn stops ReadStream and is returned.
//
// Framing: a document ends where its braces balance. A line starting with
// '{' at column 0 while a document is still open starts a new document (the
// open one is counted bad), so one broken line cannot swallow the lines
// after it; documents must therefore indent their inner lines, as
// pretty-printers do.
//
// ReadStream returns nil at the end of r, ctx.Err() when ctx is done, or a
// read error. On return a Read on r may still be pending in a goroutine
// (io.Reader cannot be interrupted); it ends when r returns, e.g. when the
// caller closes r.
func ReadStream(ctx context.Context, r io.Reader, fn func(events []Event, st DocStats) error) error {
	frames := make(chan []byte, 64)
	done := make(chan struct{})
	defer close(done)
	var readErr error // set before frames is closed
	go func() {
		defer close(frames)
		readErr = frameStream(r, DefaultMaxSize, func(b []byte) bool {
			select {
			case frames <- b:
				return true
			case <-done:
				return false
			}
		})
	}()

	dec := NewDecoder()
	var pending []Event
	var st DocStats
	flush := func() error {
		if len(pending) == 0 && st.Records == 0 {
			return nil
		}
		err := fn(pending, st)
		pending, st = pending[:0], DocStats{}
		return err
	}
	for {
		var fr []byte
		var ok bool
		select {
		case fr, ok = <-frames:
		case <-ctx.Done():
			return ctx.Err()
		default:
			// The input pauses: hand over what we have, then wait.
			if err := flush(); err != nil {
				return err
			}
			select {
			case fr, ok = <-frames:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !ok {
			if err := flush(); err != nil {
				return err
			}
			if readErr != nil {
				return fmt.Errorf("stream: read: %w", readErr)
			}
			return nil
		}
		var ds DocStats
		var err error
		if fr == nil { // an over-long document, dropped by the framer
			err = fmt.Errorf("stream: document of more than %d bytes: %w", DefaultMaxSize, ErrTooLarge)
		} else {
			pending, ds, err = dec.Decode(fr, pending)
		}
		st.Records += ds.Records
		st.BadRecords += ds.BadRecords
		st.Bytes += ds.Bytes
		if st.BadReason == "" {
			st.BadReason = ds.BadReason
		}
		if err != nil {
			st.Records++
			st.BadRecords++
			if st.BadReason == "" {
				st.BadReason = err.Error()
			}
		}
		if len(pending) >= ChunkSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// frameStream splits r (gzip sniffed) into documents and calls emit with
// each (a fresh slice; nil for a document longer than max, dropped). It
// stops when emit returns false.
func frameStream(r io.Reader, max int, emit func([]byte) bool) error {
	br := bufio.NewReaderSize(r, 1<<20)
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("gunzip: %w", err)
		}
		defer gz.Close()
		br = bufio.NewReaderSize(gz, 1<<20)
	}
	var (
		acc       []byte
		fs        frameState
		dropping  bool // the open document went over max: skip to the next one
		lineStart = true
	)
	for {
		line, err := br.ReadSlice('\n')
		// A new document at column 0 while one is open: the open one is
		// broken.
		if lineStart && len(line) > 0 && line[0] == '{' && (len(acc) > 0 || dropping) {
			if !dropping && !emit(acc) {
				return nil
			}
			acc, fs, dropping = nil, frameState{}, false
		}
		lineStart = err != bufio.ErrBufferFull
		// A document ends where its braces balance, also mid-line: CloudTrail
		// files carry no final newline, so concatenated files are
		// "}{"-joined.
		for len(line) > 0 {
			end := fs.closes(line)
			seg := line
			if end >= 0 {
				seg, line = line[:end], line[end:]
			} else {
				line = nil
			}
			if len(acc) == 0 && !dropping {
				seg = bytes.TrimLeft(seg, " \t\r\n")
			}
			if !dropping && len(seg) > 0 {
				acc = append(acc, seg...)
				if len(acc) > max {
					if !emit(nil) {
						return nil
					}
					acc, dropping = nil, true
				}
			}
			if end < 0 {
				break
			}
			if len(acc) > 0 && !emit(acc) {
				return nil
			}
			acc, fs, dropping = nil, frameState{}, false
		}
		// A line that never opened a document (stray text) ends at its
		// newline, and is counted bad by the decoder.
		if lineStart && fs.depth <= 0 && !fs.inString && len(bytes.TrimSpace(acc)) > 0 {
			if !emit(acc) {
				return nil
			}
			acc, fs = nil, frameState{}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if len(acc) > 0 && !emit(acc) {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// frameState follows brace depth across lines, ignoring braces in strings.
type frameState struct {
	depth    int
	inString bool
	escape   bool
}

// closes scans b and returns the index just past the byte that closes the
// open document (its depth back to 0 from above), or -1 when b does not
// close it.
func (s *frameState) closes(b []byte) int {
	for i, c := range b {
		if s.inString {
			switch {
			case s.escape:
				s.escape = false
			case c == '\\':
				s.escape = true
			case c == '"':
				s.inString = false
			}
			continue
		}
		switch c {
		case '"':
			s.inString = true
		case '{', '[':
			s.depth++
		case '}', ']':
			s.depth--
			if s.depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}
