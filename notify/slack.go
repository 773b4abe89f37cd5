package notify

import (
	"fmt"
	"strings"
	"time"

	"github.com/trailsight/trailsight/detector"
)

// Slack incoming webhook payloads: {"text": fallback, "blocks": [...]} in
// Block Kit. Limits respected (docs.slack.dev, Block Kit reference): at most
// 50 blocks per message; header text plain_text ≤ 150 characters; section
// text ≤ 3000 and at most 10 fields of ≤ 2000 each; context at most 10
// elements; block_id ≤ 255 and unique within the message.
const (
	slackMaxBlocks      = 50
	slackMaxHeader      = 150
	slackMaxSectionText = 3000
	slackMaxFields      = 10
	slackMaxFieldText   = 2000
	slackMaxContext     = 10
	slackMaxBlockID     = 255
	slackGroupPerMsg    = 40  // insights per grouped message
	slackMaxLine        = 280 // characters per line of a grouped message
)

// NewSlack returns a notifier posting to a Slack incoming webhook URL.
//
// One insight makes one message: a Start has a header (what and where), a
// section saying how far from normal it is with fields for the API,
// account, region, type, kind, observed vs expected, since when and the
// duration, and a context with the top identities and user agents; an End
// is a short follow-up that names the Start's time ("resolved after 8 min,
// mean 2.38 calls/min"). More than GroupAbove insights in one Notify make
// grouped messages (a summary header and one line per insight, at most 40
// insights per message). Every block_id holds the eventID (or a hash of
// the message's eventIDs) and a context lists them, so duplicates can be
// spotted. Messages are at least MinInterval apart (default 1 s, Slack's
// limit per webhook).
func NewSlack(webhookURL Secret, opt ChatOptions) (*Chat, error) {
	return newChat("slack", webhookURL, opt, time.Second, slackRender)
}

type slackText struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	BlockID  string      `json:"block_id,omitempty"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

func slackRender(ins []detector.Insight, opt ChatOptions) ([]chatMessage, error) {
	var msgs []slackMessage
	if len(ins) > opt.GroupAbove {
		parts := chunks(ins, slackGroupPerMsg)
		for i, part := range parts {
			msgs = append(msgs, slackGroup(groupTitle(ins, i, len(parts)), part))
		}
	} else {
		for _, in := range ins {
			msgs = append(msgs, slackSingle(describe(in)))
		}
	}
	out := make([]chatMessage, 0, len(msgs))
	for _, m := range msgs {
		b, err := marshal(m)
		if err != nil {
			return nil, fmt.Errorf("slack payload: %w", err)
		}
		out = append(out, chatMessage{body: b})
	}
	return out, nil
}

// slackEsc escapes the three characters that Slack's mrkdwn reserves.
func slackEsc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// slackCode is s as inline code.
func slackCode(s string) string { return "`" + slackEsc(strings.ReplaceAll(s, "`", "'")) + "`" }

func mrkdwn(s string, max int) slackText { return slackText{Type: "mrkdwn", Text: clip(s, max)} }

func slackEmoji(s summary) string {
	switch s.severity {
	case 2:
		return ":rotating_light:"
	case 1:
		return ":warning:"
	}
	return ":white_check_mark:"
}

func slackSingle(s summary) slackMessage {
	ids := mrkdwn("eventID "+slackCode(s.eventID)+" · sharedEventID "+slackCode(s.sharedEventID), slackMaxFieldText)
	if !s.start {
		text := fmt.Sprintf("%s *Resolved:* %s of %s in %s %s — started %s, %s.", slackEmoji(s), s.kind,
			slackCode(s.name), slackEsc(s.account), slackEsc(s.region), s.since, slackEsc(s.resolved))
		return slackMessage{Text: slackEsc(s.headline), Blocks: []slackBlock{
			{Type: "section", BlockID: "e-" + s.eventID, Text: ptr(mrkdwn(text, slackMaxSectionText))},
			{Type: "context", BlockID: "c-" + s.eventID, Elements: []slackText{ids}},
		}}
	}
	field := func(name, value string) slackText {
		return mrkdwn("*"+name+"*\n"+value, slackMaxFieldText)
	}
	fields := []slackText{
		field("API", slackCode(s.source)+" "+slackCode(s.name)),
		field("Account", slackEsc(s.account)),
		field("Region", slackEsc(s.region)),
		field("Type", slackEsc(s.typ)),
		field("Kind", slackEsc(s.kindLong)),
		field("Observed vs expected", slackEsc(s.howFar)),
		field("Since", s.since),
		field("Duration", s.duration),
	}
	blocks := []slackBlock{
		{Type: "header", BlockID: "h-" + s.eventID, Text: &slackText{Type: "plain_text", Text: clip(slackEmoji(s)+" "+s.title, slackMaxHeader), Emoji: true}},
		{Type: "section", BlockID: "s-" + s.eventID, Text: ptr(mrkdwn("*"+slackEsc(s.howFar)+"*", slackMaxSectionText)), Fields: fields},
	}
	var ctx []slackText
	if len(s.who) > 0 {
		ctx = append(ctx, mrkdwn("*Who:* "+slackList(s.who), slackMaxFieldText))
	}
	if len(s.agents) > 0 {
		ctx = append(ctx, mrkdwn("*User agents:* "+slackList(s.agents), slackMaxFieldText))
	}
	ctx = append(ctx, ids)
	blocks = append(blocks, slackBlock{Type: "context", BlockID: "c-" + s.eventID, Elements: ctx})
	return slackMessage{Text: slackEsc(s.headline), Blocks: blocks}
}

// slackList shows "value (rate/min)" items as code, comma-separated.
func slackList(items []string) string {
	out := make([]string, len(items))
	for i, it := range items {
		pre := ""
		if rest, ok := strings.CutPrefix(it, "usually "); ok {
			pre, it = "usually ", rest
		}
		v, rate, ok := strings.Cut(it, " (")
		if ok {
			out[i] = pre + slackCode(v) + " (" + slackEsc(rate)
		} else {
			out[i] = pre + slackCode(it)
		}
	}
	return strings.Join(out, ", ")
}

func slackGroup(title string, ins []detector.Insight) slackMessage {
	key := batchKey(ins)[:16]
	blocks := []slackBlock{{Type: "header", BlockID: "g-" + key,
		Text: &slackText{Type: "plain_text", Text: clip(":bell: "+title, slackMaxHeader), Emoji: true}}}
	var sec strings.Builder
	flush := func() {
		if sec.Len() > 0 {
			blocks = append(blocks, slackBlock{Type: "section", BlockID: fmt.Sprintf("g-%s-%d", key, len(blocks)),
				Text: &slackText{Type: "mrkdwn", Text: sec.String()}})
			sec.Reset()
		}
	}
	ids := make([]string, len(ins))
	for i, in := range ins {
		s := describe(in)
		ids[i] = in.EventID
		line := slackEmoji(s) + " " + slackEsc(clip(s.line, slackMaxLine))
		if sec.Len()+1+len(line) > slackMaxSectionText {
			flush()
		}
		if sec.Len() > 0 {
			sec.WriteByte('\n')
		}
		sec.WriteString(line)
	}
	flush()
	var elems []slackText
	var el strings.Builder
	for _, id := range ids {
		if el.Len()+len(id)+1 > slackMaxFieldText {
			elems = append(elems, mrkdwn(el.String(), slackMaxFieldText))
			el.Reset()
		}
		if el.Len() == 0 {
			el.WriteString("eventIDs:")
		}
		el.WriteString(" " + id)
	}
	elems = append(elems, mrkdwn(el.String(), slackMaxFieldText))
	blocks = append(blocks, slackBlock{Type: "context", BlockID: "c-" + key, Elements: elems[:min(len(elems), slackMaxContext)]})
	return slackMessage{Text: title, Blocks: blocks}
}

func ptr[T any](v T) *T { return &v }
