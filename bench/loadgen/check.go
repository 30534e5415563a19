package main

import "encoding/json"

type chatAnswer struct {
	Object  string `json:"object"`
	Choices []struct {
		Message struct {
			Content *string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
}

type listAnswer struct {
	Object string            `json:"object"`
	Data   []json.RawMessage `json:"data"`
}

// checkBody returns "" for an answer of the expected kind, else what is wrong with it.
func checkBody(expect string, body []byte) string {
	switch expect {
	case "chat":
		var a chatAnswer
		if err := json.Unmarshal(body, &a); err != nil {
			return "not JSON"
		}
		if a.Object != "chat.completion" || len(a.Choices) == 0 || a.Choices[0].Message.Content == nil {
			return "not a chat completion"
		}
	case "embeddings", "models":
		var a listAnswer
		if err := json.Unmarshal(body, &a); err != nil {
			return "not JSON"
		}
		if a.Object != "list" || len(a.Data) == 0 {
			return "not a list with data"
		}
	case "any":
		if !json.Valid(body) {
			return "not JSON"
		}
	}
	return ""
}
