// Command kstatus prints the verdict of the real kstatus library
// (sigs.k8s.io/cli-utils/pkg/kstatus/status, the rules Flux's health checks and `kpt live status`
// apply) for each Kubernetes object of a JSON array read on stdin. It writes a JSON array of
// {"status": "...", "message": "..."} in the same order. A Compute error is reported as status
// "Error" with the error as message (kstatus callers treat such an object as not healthy).
//
//	echo '[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}]' | kstatus
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	var objects []json.RawMessage
	if err := json.NewDecoder(in).Decode(&objects); err != nil {
		return fmt.Errorf("reading a JSON array of objects: %w", err)
	}
	verdicts := make([]verdict, 0, len(objects))
	for i, raw := range objects {
		// UnmarshalJSON decodes integers as int64, as the API machinery does; a plain
		// encoding/json decode would give float64 and make kstatus' NestedInt64 lookups fail.
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			return fmt.Errorf("object %d: %w", i, err)
		}
		res, err := status.Compute(u)
		if err != nil {
			verdicts = append(verdicts, verdict{Status: "Error", Message: err.Error()})
			continue
		}
		verdicts = append(verdicts, verdict{Status: string(res.Status), Message: res.Message})
	}
	enc := json.NewEncoder(out)
	return enc.Encode(verdicts)
}
