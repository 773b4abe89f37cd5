package notify

import (
	"fmt"
	"strings"
	"time"

	"github.com/trailsight/trailsight/detector"
)

// Microsoft Teams Workflows webhook payloads: a message with one Adaptive
// Card 1.4 attachment. (The Office 365 connectors and their MessageCard
// format are retired.) Teams takes messages up to about 28 KB; grouped
// cards hold at most 40 insights to stay well under it.
const (
	teamsGroupPerMsg = 40
	teamsMaxLine     = 300
	teamsMaxText     = 2000
)

// NewTeams returns a notifier posting to a Microsoft Teams Workflows
// webhook URL ("Post to a channel when a webhook request is received").
//
// One insight makes one card: a bold title, how far from normal, a FactSet
// (API, account, region, type, kind, observed vs expected, since,
// duration, who, user agents) and a small line with the eventIDs; an End
// card says when the insight started and how it ended. More than
// GroupAbove insights in one Notify make grouped cards (a summary title
// and one line per insight). Cards are at least MinInterval apart (default
// 1 s).
func NewTeams(webhookURL Secret, opt ChatOptions) (*Chat, error) {
	return newChat("teams", webhookURL, opt, time.Second, teamsRender)
}

type teamsMessage struct {
	Type        string            `json:"type"`
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string    `json:"contentType"`
	ContentURL  *string   `json:"contentUrl"`
	Content     teamsCard `json:"content"`
}

type teamsCard struct {
	Schema  string         `json:"$schema"`
	Type    string         `json:"type"`
	Version string         `json:"version"`
	Body    []teamsElement `json:"body"`
	MSTeams map[string]any `json:"msteams,omitempty"`
}

// teamsElement is a TextBlock or a FactSet.
type teamsElement struct {
	Type     string      `json:"type"`
	Text     string      `json:"text,omitempty"`
	Weight   string      `json:"weight,omitempty"`
	Size     string      `json:"size,omitempty"`
	Color    string      `json:"color,omitempty"`
	IsSubtle bool        `json:"isSubtle,omitempty"`
	Wrap     bool        `json:"wrap,omitempty"`
	Spacing  string      `json:"spacing,omitempty"`
	Facts    []teamsFact `json:"facts,omitempty"`
}

type teamsFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

func teamsRender(ins []detector.Insight, opt ChatOptions) ([]chatMessage, error) {
	var cards [][]teamsElement
	if len(ins) > opt.GroupAbove {
		parts := chunks(ins, teamsGroupPerMsg)
		for i, part := range parts {
			cards = append(cards, teamsGroup(groupTitle(ins, i, len(parts)), part))
		}
	} else {
		for _, in := range ins {
			cards = append(cards, teamsSingle(describe(in)))
		}
	}
	out := make([]chatMessage, 0, len(cards))
	for _, body := range cards {
		b, err := marshal(teamsMessage{Type: "message", Attachments: []teamsAttachment{{
			ContentType: "application/vnd.microsoft.card.adaptive",
			Content: teamsCard{
				Schema: "http://adaptivecards.io/schemas/adaptive-card.json", Type: "AdaptiveCard", Version: "1.4",
				Body: body, MSTeams: map[string]any{"width": "Full"},
			},
		}}})
		if err != nil {
			return nil, fmt.Errorf("teams payload: %w", err)
		}
		out = append(out, chatMessage{body: b})
	}
	return out, nil
}

func teamsColor(s summary) string {
	switch s.severity {
	case 2:
		return "Attention"
	case 1:
		return "Warning"
	}
	return "Good"
}

func textBlock(text string) teamsElement {
	return teamsElement{Type: "TextBlock", Text: clip(text, teamsMaxText), Wrap: true}
}

func teamsIDs(s summary) teamsElement {
	e := textBlock("eventID " + s.eventID + " · sharedEventID " + s.sharedEventID)
	e.IsSubtle, e.Size, e.Spacing = true, "Small", "Small"
	return e
}

func teamsSingle(s summary) []teamsElement {
	title := textBlock(s.title)
	title.Weight, title.Size, title.Color = "Bolder", "Medium", teamsColor(s)
	if !s.start {
		return []teamsElement{title, textBlock("Started " + s.since + ", " + s.resolved + "."), teamsIDs(s)}
	}
	facts := []teamsFact{
		{"API", s.api}, {"Account", s.account}, {"Region", s.region}, {"Type", s.typ}, {"Kind", s.kindLong},
		{"Observed vs expected", s.howFar}, {"Since", s.since}, {"Duration", s.duration},
	}
	if len(s.who) > 0 {
		facts = append(facts, teamsFact{"Who", strings.Join(s.who, ", ")})
	}
	if len(s.agents) > 0 {
		facts = append(facts, teamsFact{"User agents", strings.Join(s.agents, ", ")})
	}
	for i := range facts {
		facts[i].Value = clip(facts[i].Value, teamsMaxText)
	}
	how := textBlock(s.howFar)
	how.Weight = "Bolder"
	return []teamsElement{title, how, {Type: "FactSet", Facts: facts}, teamsIDs(s)}
}

func teamsGroup(title string, ins []detector.Insight) []teamsElement {
	head := textBlock(title)
	head.Weight, head.Size = "Bolder", "Medium"
	body := []teamsElement{head}
	ids := make([]string, len(ins))
	for i, in := range ins {
		s := describe(in)
		ids[i] = in.EventID
		line := textBlock("- " + clip(s.line, teamsMaxLine))
		line.Color, line.Spacing = teamsColor(s), "None"
		body = append(body, line)
	}
	foot := textBlock("eventIDs: " + strings.Join(ids, " "))
	foot.Text = "eventIDs: " + strings.Join(ids, " ") // not clipped: 40 IDs fit a card
	foot.IsSubtle, foot.Size = true, "Small"
	return append(body, foot)
}
