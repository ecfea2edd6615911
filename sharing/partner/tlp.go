package partner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/cordonhq/cordon/intel"
)

// The OASIS marking-definition ids of TLP 2.0 (as the STIX 2.1 TLP 2.0
// extension publishes them) and of TLP 1.0 (STIX 2.1, section 7.2.1.4).
const (
	MarkingClear       = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
	MarkingGreen       = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
	MarkingAmber       = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
	MarkingAmberStrict = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
	MarkingRed         = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"

	MarkingV1White = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"
	MarkingV1Green = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
	MarkingV1Amber = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"
	MarkingV1Red   = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"
)

// Unmarked is the TLP of an object that carries no TLP marking: AMBER,
// so that an object nobody marked does not leave by default.
const Unmarked = intel.TLPAmber

var markings = map[string]intel.TLP{
	MarkingClear:       intel.TLPClear,
	MarkingGreen:       intel.TLPGreen,
	MarkingAmber:       intel.TLPAmber,
	MarkingAmberStrict: intel.TLPAmberStrict,
	MarkingRed:         intel.TLPRed,
	MarkingV1White:     intel.TLPClear,
	MarkingV1Green:     intel.TLPGreen,
	MarkingV1Amber:     intel.TLPAmber,
	MarkingV1Red:       intel.TLPRed,
}

// rank orders TLPs from least to most restricted; an unknown value
// ranks above red.
func rank(t intel.TLP) int {
	switch t {
	case intel.TLPClear:
		return 0
	case intel.TLPGreen:
		return 1
	case intel.TLPAmber:
		return 2
	case intel.TLPAmberStrict:
		return 3
	case intel.TLPRed:
		return 4
	}
	return 5
}

// TLPOf reads the TLP of a STIX object: the most restricted of the TLP
// markings it references, in object_marking_refs or in any of its
// granular_markings (a TLP:RED property makes the object RED). Other
// markings (statements) are ignored. An object with no TLP marking is
// Unmarked (AMBER). Member names match exactly, as STIX has them, and a
// member given twice counts with every value it was given, so that no
// reading of a crafted object finds a less restricted marking. An
// object that is not JSON, or whose marking references are not strings,
// is an error.
func TLPOf(raw []byte) (intel.TLP, error) {
	var refs []string
	err := members(raw, func(key string, v json.RawMessage) error {
		switch key {
		case "object_marking_refs":
			var rs []string
			if err := json.Unmarshal(v, &rs); err != nil {
				return fmt.Errorf("object_marking_refs: %w", err)
			}
			refs = append(refs, rs...)
		case "granular_markings":
			var gs []json.RawMessage
			if err := json.Unmarshal(v, &gs); err != nil {
				return fmt.Errorf("granular_markings: %w", err)
			}
			for _, g := range gs {
				err := members(g, func(key string, v json.RawMessage) error {
					if key != "marking_ref" {
						return nil
					}
					var r string
					if err := json.Unmarshal(v, &r); err != nil {
						return fmt.Errorf("granular_markings marking_ref: %w", err)
					}
					refs = append(refs, r)
					return nil
				})
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read TLP markings: %w", err)
	}
	found := false
	top := intel.TLPClear
	for _, r := range refs {
		t, ok := markings[r]
		if !ok {
			continue
		}
		found = true
		if rank(t) > rank(top) {
			top = t
		}
	}
	if !found {
		return Unmarked, nil
	}
	return top, nil
}

// members calls fn with each member of the JSON object raw, in order,
// duplicates included.
func members(raw []byte, fn func(key string, v json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil {
		return err
	} else if tok != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string) // object keys are strings
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if err := fn(key, v); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON object")
	}
	return nil
}
