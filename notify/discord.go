package notify

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trailsight/trailsight/detector"
)

// Discord webhook payloads: {"content", "embeds":[…], "allowed_mentions"}.
// Limits respected (discord.com/developers/docs/resources/message#embed-
// object-embed-limits): content ≤ 2000; ≤ 10 embeds; title ≤ 256;
// description ≤ 4096; ≤ 25 fields, name ≤ 256, value ≤ 1024; footer ≤
// 2048; the characters of all titles, descriptions, field names and values
// and footers of a message ≤ 6000. allowed_mentions is empty so that text
// from CloudTrail (a user agent saying @everyone) never pings anyone.
const (
	discordMaxContent     = 2000
	discordMaxEmbeds      = 10
	discordMaxTitle       = 256
	discordMaxDescription = 4096
	discordMaxFields      = 25
	discordMaxFieldName   = 256
	discordMaxFieldValue  = 1024
	discordMaxFooter      = 2048
	discordMaxTotal       = 6000
	discordGroupPerMsg    = 20  // insights per grouped message
	discordMaxLine        = 190 // characters per line of a grouped message
)

// NewDiscord returns a notifier posting to a Discord webhook URL.
//
// One insight makes one message with one embed: the title, how far from
// normal as the description, inline fields (API, account, region, type,
// kind, observed vs expected, since, duration, who, user agents), the
// insight's time as timestamp, a colour by severity and the eventIDs in
// the footer. More than GroupAbove insights in one Notify make grouped
// messages of at most 20 insights (a summary and one line per insight).
// Messages are at least MinInterval apart (default 1 s).
func NewDiscord(webhookURL Secret, opt ChatOptions) (*Chat, error) {
	return newChat("discord", webhookURL, opt, time.Second, discordRender)
}

type discordMessage struct {
	Content         string          `json:"content"`
	Embeds          []discordEmbed  `json:"embeds"`
	AllowedMentions discordMentions `json:"allowed_mentions"`
}

type discordMentions struct {
	Parse []string `json:"parse"`
}

type discordEmbed struct {
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	Color       int            `json:"color"`
	Fields      []discordField `json:"fields,omitempty"`
	Timestamp   string         `json:"timestamp"`
	Footer      discordFooter  `json:"footer"`
}

type discordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

type discordFooter struct {
	Text string `json:"text"`
}

func discordRender(ins []detector.Insight, opt ChatOptions) ([]chatMessage, error) {
	var msgs []discordMessage
	if len(ins) > opt.GroupAbove {
		parts := chunks(ins, discordGroupPerMsg)
		for i, part := range parts {
			msgs = append(msgs, discordGroup(groupTitle(ins, i, len(parts)), part))
		}
	} else {
		for _, in := range ins {
			msgs = append(msgs, discordSingle(describe(in)))
		}
	}
	out := make([]chatMessage, 0, len(msgs))
	for _, m := range msgs {
		b, err := marshal(m)
		if err != nil {
			return nil, fmt.Errorf("discord payload: %w", err)
		}
		out = append(out, chatMessage{body: b})
	}
	return out, nil
}

func discordColor(s summary) int {
	switch s.severity {
	case 2:
		return 0xE01E5A // red
	case 1:
		return 0xECB22E // amber
	}
	return 0x2EB67D // green
}

// discordEsc keeps CloudTrail text from being read as Discord markdown.
func discordEsc(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "~", `\~`, "`", `\`+"`", "|", `\|`, ">", `\>`).Replace(s)
}

func discordSingle(s summary) discordMessage {
	e := discordEmbed{
		Title:     clip(discordEsc(s.title), discordMaxTitle),
		Color:     discordColor(s),
		Timestamp: s.time.Format(time.RFC3339),
		Footer:    discordFooter{Text: clip("trailsight · eventID "+s.eventID+" · sharedEventID "+s.sharedEventID, discordMaxFooter)},
	}
	if !s.start {
		e.Description = clip(discordEsc("Started "+s.since+", "+s.resolved+"."), discordMaxDescription)
	} else {
		e.Description = clip("**"+discordEsc(s.howFar)+"**", discordMaxDescription)
		field := func(name, value string, inline bool) discordField {
			return discordField{Name: name, Value: clip(discordEsc(value), discordMaxFieldValue), Inline: inline}
		}
		e.Fields = []discordField{
			field("API", s.api, false), field("Account", s.account, true), field("Region", s.region, true),
			field("Type", s.typ, true), field("Kind", s.kindLong, true), field("Since", s.since, true),
			field("Duration", s.duration, true), field("Observed vs expected", s.howFar, false),
		}
		if len(s.who) > 0 {
			e.Fields = append(e.Fields, field("Who", strings.Join(s.who, "\n"), false))
		}
		if len(s.agents) > 0 {
			e.Fields = append(e.Fields, field("User agents", strings.Join(s.agents, "\n"), false))
		}
	}
	fitDiscord(&e)
	return discordMessage{Content: clip(discordEsc(s.title), discordMaxContent), Embeds: []discordEmbed{e}, AllowedMentions: discordMentions{Parse: []string{}}}
}

// discordChars counts the characters Discord limits to 6000 per message.
func discordChars(e discordEmbed) int {
	n := utf8.RuneCountInString(e.Title) + utf8.RuneCountInString(e.Description) + utf8.RuneCountInString(e.Footer.Text)
	for _, f := range e.Fields {
		n += utf8.RuneCountInString(f.Name) + utf8.RuneCountInString(f.Value)
	}
	return n
}

// fitDiscord shortens the fields of e (long lists of identities) until the
// embed fits Discord's total.
func fitDiscord(e *discordEmbed) {
	for limit := discordMaxFieldValue / 2; discordChars(*e) > discordMaxTotal && limit >= 64; limit /= 2 {
		for i := range e.Fields {
			e.Fields[i].Value = clip(e.Fields[i].Value, limit)
		}
	}
}

func discordGroup(title string, ins []detector.Insight) discordMessage {
	lines := make([]string, len(ins))
	ids := make([]string, len(ins))
	color := 0x2EB67D
	for i, in := range ins {
		s := describe(in)
		lines[i] = "• " + clip(discordEsc(s.line), discordMaxLine)
		ids[i] = in.EventID
		if c := discordColor(s); s.severity == 2 || (s.severity == 1 && color == 0x2EB67D) {
			color = c
		}
	}
	e := discordEmbed{
		Title:       clip(title, discordMaxTitle),
		Description: clip(strings.Join(lines, "\n"), discordMaxDescription),
		Color:       color,
		Timestamp:   ins[0].Time.UTC().Format(time.RFC3339),
		Footer:      discordFooter{Text: clip("trailsight · eventIDs "+strings.Join(ids, " "), discordMaxFooter)},
	}
	return discordMessage{Content: clip(title, discordMaxContent), Embeds: []discordEmbed{e}, AllowedMentions: discordMentions{Parse: []string{}}}
}
