package notify

import (
	"fmt"
	"net/http"
)

// validateTeams checks a Workflows webhook payload: a "message" with
// Adaptive Card 1.4 attachments whose body holds TextBlocks and FactSets
// with the properties and values the 1.4 schema allows, under Teams' 28 KB.
func validateTeams(_ *http.Request, body []byte) error {
	if len(body) > 28<<10 {
		return fmt.Errorf("payload of %d bytes, Teams takes up to 28 KB", len(body))
	}
	v, err := decodeJSON(body)
	if err != nil {
		return err
	}
	s := &schema{}
	msg := s.obj(v, "message", "type", "attachments")
	s.oneOf(msg["type"], "type", "message")
	for i, a := range s.arr(msg["attachments"], "attachments", 1, 10) {
		where := fmt.Sprintf("attachments[%d]", i)
		att := s.obj(a, where, "contentType", "contentUrl", "content")
		s.oneOf(att["contentType"], where+".contentType", "application/vnd.microsoft.card.adaptive")
		if u, ok := att["contentUrl"]; ok && u != nil {
			s.fail(where, "contentUrl %v, want null", u)
		}
		card := s.obj(att["content"], where+".content", "$schema", "type", "version", "body", "msteams")
		s.oneOf(card["$schema"], where+".$schema", "http://adaptivecards.io/schemas/adaptive-card.json")
		s.oneOf(card["type"], where+".type", "AdaptiveCard")
		s.oneOf(card["version"], where+".version", "1.4")
		for j, e := range s.arr(card["body"], where+".body", 1, 200) {
			ew := fmt.Sprintf("%s.body[%d]", where, j)
			el := s.obj(e, ew, "type", "text", "weight", "size", "color", "isSubtle", "wrap", "spacing", "facts")
			opt := func(key string, vals ...string) {
				if x, ok := el[key]; ok {
					s.oneOf(x, ew+"."+key, vals...)
				}
			}
			opt("spacing", "None", "Small", "Default", "Medium", "Large", "ExtraLarge", "Padding")
			switch el["type"] {
			case "TextBlock":
				s.str(el["text"], ew+".text", 1, 5000)
				opt("weight", "Default", "Lighter", "Bolder")
				opt("size", "Default", "Small", "Medium", "Large", "ExtraLarge")
				opt("color", "Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention")
				for _, b := range []string{"isSubtle", "wrap"} {
					if x, ok := el[b]; ok {
						s.boolean(x, ew+"."+b)
					}
				}
				if _, ok := el["facts"]; ok {
					s.fail(ew, "facts on a TextBlock")
				}
			case "FactSet":
				for k, f := range s.arr(el["facts"], ew+".facts", 1, 50) {
					fo := s.obj(f, fmt.Sprintf("%s.facts[%d]", ew, k), "title", "value")
					s.str(fo["title"], ew+".title", 1, 200)
					s.str(fo["value"], ew+".value", 1, 5000)
				}
				if _, ok := el["text"]; ok {
					s.fail(ew, "text on a FactSet")
				}
			default:
				s.fail(ew, "element type %v", el["type"])
			}
		}
	}
	return s.err()
}
