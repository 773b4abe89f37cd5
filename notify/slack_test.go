package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/trailsight/trailsight/detector"
)

// schema is a small checker of decoded JSON: it collects every problem.
type schema struct{ errs []error }

func (s *schema) fail(where, format string, args ...any) {
	s.errs = append(s.errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
}

func (s *schema) obj(v any, where string, allowed ...string) map[string]any {
	m, ok := v.(map[string]any)
	if !ok {
		s.fail(where, "want an object, got %T", v)
		return nil
	}
	for k := range m {
		if !slices.Contains(allowed, k) {
			s.fail(where, "unknown key %q", k)
		}
	}
	return m
}

func (s *schema) arr(v any, where string, minN, maxN int) []any {
	a, ok := v.([]any)
	if !ok {
		s.fail(where, "want an array, got %T", v)
		return nil
	}
	if len(a) < minN || len(a) > maxN {
		s.fail(where, "%d items, want %d to %d", len(a), minN, maxN)
	}
	return a
}

// str checks a string of minN to maxN characters and returns it.
func (s *schema) str(v any, where string, minN, maxN int) string {
	x, ok := v.(string)
	if !ok {
		s.fail(where, "want a string, got %T", v)
		return ""
	}
	if n := utf8.RuneCountInString(x); n < minN || n > maxN {
		s.fail(where, "%d characters, want %d to %d", n, minN, maxN)
	}
	return x
}

func (s *schema) oneOf(v any, where string, vals ...string) {
	if x := s.str(v, where, 0, 1000); !slices.Contains(vals, x) {
		s.fail(where, "%q, want one of %q", x, vals)
	}
}

func (s *schema) boolean(v any, where string) {
	if _, ok := v.(bool); !ok {
		s.fail(where, "want a boolean, got %T", v)
	}
}

func (s *schema) err() error { return errors.Join(s.errs...) }

func decodeJSON(body []byte) (any, error) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// validateSlack checks an incoming-webhook payload against Block Kit's
// documented basics: text, at most 50 blocks of the kinds we use, block_id
// ≤ 255 and unique, header plain_text ≤ 150, section text ≤ 3000 and at most
// 10 fields ≤ 2000, context 1 to 10 text elements.
func validateSlack(_ *http.Request, body []byte) error {
	v, err := decodeJSON(body)
	if err != nil {
		return err
	}
	s := &schema{}
	msg := s.obj(v, "message", "text", "blocks")
	ids := map[string]bool{}
	mrkdwnText := func(x, where string) {
		// We send no links or mentions: every <, > and & must be escaped.
		if strings.ContainsAny(x, "<>") || strings.Count(x, "&") != strings.Count(x, "&amp;")+strings.Count(x, "&lt;")+strings.Count(x, "&gt;") {
			s.fail(where, "mrkdwn with unescaped <, > or &: %.100q", x)
		}
	}
	mrkdwnText(s.str(msg["text"], "text", 1, 40000), "text")
	textObj := func(v any, where string, maxN int, types ...string) {
		o := s.obj(v, where, "type", "text", "emoji", "verbatim")
		s.oneOf(o["type"], where+".type", types...)
		if x := s.str(o["text"], where+".text", 1, maxN); o["type"] == "mrkdwn" {
			mrkdwnText(x, where+".text")
		}
		if e, ok := o["emoji"]; ok {
			s.boolean(e, where+".emoji")
			if o["type"] != "plain_text" {
				s.fail(where, "emoji on %v", o["type"])
			}
		}
	}
	for i, b := range s.arr(msg["blocks"], "blocks", 1, slackMaxBlocks) {
		where := fmt.Sprintf("blocks[%d]", i)
		o := s.obj(b, where, "type", "block_id", "text", "fields", "elements")
		if id, ok := o["block_id"]; ok {
			x := s.str(id, where+".block_id", 1, slackMaxBlockID)
			if ids[x] {
				s.fail(where, "duplicate block_id %q", x)
			}
			ids[x] = true
		}
		switch o["type"] {
		case "header":
			textObj(o["text"], where+".text", slackMaxHeader, "plain_text")
		case "section":
			if o["text"] == nil && o["fields"] == nil {
				s.fail(where, "section without text or fields")
			}
			if o["text"] != nil {
				textObj(o["text"], where+".text", slackMaxSectionText, "mrkdwn", "plain_text")
			}
			if o["fields"] != nil {
				for j, f := range s.arr(o["fields"], where+".fields", 1, slackMaxFields) {
					textObj(f, fmt.Sprintf("%s.fields[%d]", where, j), slackMaxFieldText, "mrkdwn", "plain_text")
				}
			}
		case "context":
			for j, e := range s.arr(o["elements"], where+".elements", 1, slackMaxContext) {
				textObj(e, fmt.Sprintf("%s.elements[%d]", where, j), slackMaxSectionText, "mrkdwn", "plain_text")
			}
		default:
			s.fail(where, "block type %v", o["type"])
		}
	}
	return s.err()
}

// TestSlackLimits: long identities, many attributions and mrkdwn
// characters stay within Slack's limits and are escaped.
func TestSlackLimits(t *testing.T) {
	in := fixture()[0]
	long := strings.Repeat("x", 2500)
	in.EventName = "Put<Evil>&" + long
	in.Attributions = []detector.Attribution{{Attribute: "userIdentityArn"}, {Attribute: "userAgent"}}
	for i := range 5 {
		in.Attributions[0].Insight = append(in.Attributions[0].Insight, detector.AttrValue{Value: fmt.Sprintf("arn:%d:%s", i, long), Average: 1})
		in.Attributions[1].Insight = append(in.Attributions[1].Insight, detector.AttrValue{Value: "agent `<!channel>` " + long, Average: 1})
	}
	for k := range chatKinds {
		n, h := newTestChat(t, k)
		if err := n.Notify(context.Background(), []detector.Insight{in}); err != nil {
			t.Errorf("%s: %v", chatKinds[k].name, err)
		}
		if k == 0 {
			for _, b := range h.received() {
				var m slackMessage
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatal(err)
				}
				texts := []string{m.Text}
				for _, bl := range m.Blocks {
					if bl.Text != nil && bl.Text.Type == "mrkdwn" {
						texts = append(texts, bl.Text.Text)
					}
					for _, f := range append(bl.Fields, bl.Elements...) {
						texts = append(texts, f.Text)
					}
				}
				for _, x := range texts {
					if strings.ContainsAny(x, "<>") {
						t.Errorf("slack: mrkdwn not escaped: %.80q", x)
					}
				}
			}
		}
		n.Close()
	}
}
