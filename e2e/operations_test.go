package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/berth-ml/berth/internal/provider"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/testenv/testdb"
	"github.com/berth-ml/berth/internal/testenv/testprovider"
)

func testCompute(name, effects string, steps int, delay time.Duration) api.ComputeRequest {
	return api.ComputeRequest{Name: name, Type: testprovider.Type, Origin: api.OriginAttached, Settings: provider.Encode(
		testprovider.Settings{EffectsDir: effects, Steps: &steps, StepDelay: provider.Duration(delay)})}
}

// waitEvent polls an operation's events until one contains want.
func waitEvent(t *testing.T, c *client.Client, opID, want string) []api.Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		evs, err := c.ListEvents(context.Background(), opID, 0)
		if err == nil {
			for _, ev := range evs {
				if strings.Contains(ev.Message, want) {
					return evs
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("operation %s: no event %q", opID, want)
	return nil
}

// assertExactlyOnce checks every resource of a compute exists exactly once.
func assertExactlyOnce(t *testing.T, effects, computeID string, steps int) {
	t.Helper()
	have, err := testprovider.Resources(effects, computeID)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= steps; i++ {
		key := fmt.Sprintf("r%02d", i)
		if n := len(have[key]); n != 1 {
			t.Errorf("compute %s resource %s exists %d times, want exactly once (%v)", computeID, key, n, have[key])
		}
	}
	if len(have) != steps {
		t.Errorf("compute %s has %d resource keys, want %d", computeID, len(have), steps)
	}
}

func waitFinal(t *testing.T, c *client.Client, opID string) *api.Operation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	final, err := c.Wait(ctx, opID, client.WaitOptions{})
	if final == nil {
		t.Fatalf("wait %s: %v", opID, err)
	}
	return final
}

// TestKillAndResume kills the only server (SIGKILL) in the middle of an
// operation on SQLite, starts it again on the same data directory, and
// checks the operation finishes with every effect made exactly once.
func TestKillAndResume(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	effects := filepath.Join(t.TempDir(), "cloud")
	os.Mkdir(effects, 0o755)
	first := startServer(t, dir, addr, nil)
	c, _ := client.New(first.url(), ownerToken(t, dir))
	ctx := context.Background()
	if _, err := c.CreateWorkspace(ctx, api.WorkspaceCreateRequest{Name: "team"}); err != nil {
		t.Fatal(err)
	}
	const steps = 4
	op, err := c.CreateCompute(ctx, "team", testCompute("resumable", effects, steps, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, c, op.ID, fmt.Sprintf("Created resource 2 of %d", steps))
	first.kill()

	running, _ := os.ReadDir(effects)
	if len(running) >= steps {
		t.Fatalf("the operation finished before the kill (%d resources)", len(running))
	}
	startServer(t, dir, addr, nil)
	final := waitFinal(t, c, op.ID)
	if final.State != api.OpSucceeded {
		t.Fatalf("after restart: %+v", final)
	}
	if final.Attempt != 2 {
		t.Errorf("attempt %d, want 2 (one restart)", final.Attempt)
	}
	evs, _ := c.ListEvents(ctx, op.ID, 0)
	all := fmt.Sprint(evs)
	if !strings.Contains(all, "Resuming at step") {
		t.Errorf("no resume event:\n%s", all)
	}
	comp, err := c.GetCompute(ctx, "team", "resumable")
	if err != nil || comp.ProvisioningState != api.StateSucceeded {
		t.Fatalf("compute after resume: %+v %v", comp, err)
	}
	assertExactlyOnce(t, effects, comp.ID, steps)
}

var serverIDRe = regexp.MustCompile(`server_id=(\S+)`)

func serverID(t *testing.T, p *serverProc) string {
	t.Helper()
	m := serverIDRe.FindStringSubmatch(p.log.String())
	if m == nil {
		t.Fatalf("no server id in log:\n%s", p.log.String())
	}
	return m[1]
}

// TestTwoServersSharePostgres runs two servers on one PostgreSQL database:
// each operation runs on exactly one of them, and when the one running an
// operation dies the other takes it over after the lease and finishes it.
func TestTwoServersSharePostgres(t *testing.T) {
	db := testdb.Postgres(t, "")
	key := make([]byte, 32)
	rand.Read(key)
	env := []string{"BERTH_SECRET_KEY=" + base64.StdEncoding.EncodeToString(key)}
	dirA, dirB := t.TempDir(), t.TempDir()
	a := startServer(t, dirA, freeAddr(t), env, "--database", db)
	b := startServer(t, dirB, freeAddr(t), env, "--database", db)
	if _, err := os.Stat(filepath.Join(dirB, "admin.token")); err == nil {
		t.Fatal("the second server made another owner token")
	}
	tok := ownerToken(t, dirA)
	ca, _ := client.New(a.url(), tok)
	cb, _ := client.New(b.url(), tok)
	effects := filepath.Join(t.TempDir(), "cloud")
	os.Mkdir(effects, 0o755)
	ctx := context.Background()
	if _, err := ca.CreateWorkspace(ctx, api.WorkspaceCreateRequest{Name: "shared"}); err != nil {
		t.Fatal(err)
	}
	idA, idB := serverID(t, a), serverID(t, b)

	// Many operations at once, queued through both servers.
	var ops []*api.Operation
	for i := 0; i < 10; i++ {
		c := ca
		if i%2 == 1 {
			c = cb
		}
		op, err := c.CreateCompute(ctx, "shared", testCompute(fmt.Sprintf("par-%d", i), effects, 2, 200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
	}
	ran := map[string]int{}
	for _, op := range ops {
		final := waitFinal(t, cb, op.ID)
		if final.State != api.OpSucceeded || final.Attempt != 1 {
			t.Errorf("%s: %s attempt %d, want Succeeded on the first attempt", op.TargetName, final.State, final.Attempt)
		}
		evs, _ := ca.ListEvents(ctx, op.ID, 0)
		starts := 0
		for _, ev := range evs {
			if strings.HasPrefix(ev.Message, "Started attach") {
				starts++
				for _, id := range []string{idA, idB} {
					if strings.HasSuffix(ev.Message, id) {
						ran[id]++
					}
				}
			}
		}
		if starts != 1 {
			t.Errorf("%s started %d times", op.TargetName, starts)
		}
		comp, _ := ca.GetCompute(ctx, "shared", op.TargetName)
		assertExactlyOnce(t, effects, comp.ID, 2)
	}
	t.Logf("operations run per server: %v", ran)
	if ran[idA]+ran[idB] != len(ops) {
		t.Errorf("operations attributed to the servers: %v, want %d in all", ran, len(ops))
	}

	// Kill the server running an operation mid-way; the other finishes it.
	const steps = 4
	op, err := ca.CreateCompute(ctx, "shared", testCompute("takeover", effects, steps, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	evs := waitEvent(t, ca, op.ID, "Created resource 1 of 4")
	runner, survivor, survivorClient, survivorID := a, b, cb, idB
	if strings.HasSuffix(evs[0].Message, idB) {
		runner, survivor, survivorClient, survivorID = b, a, ca, idA
	}
	runner.kill()
	final := waitFinal(t, survivorClient, op.ID)
	if final.State != api.OpSucceeded || final.Attempt != 2 {
		t.Fatalf("after the takeover: %+v", final)
	}
	all, _ := survivorClient.ListEvents(ctx, op.ID, 0)
	if !strings.Contains(fmt.Sprint(all), "on server "+survivorID+" (attempt 2)") {
		t.Errorf("no takeover event by %s:\n%v", survivorID, all)
	}
	comp, _ := survivorClient.GetCompute(ctx, "shared", "takeover")
	assertExactlyOnce(t, effects, comp.ID, steps)
	_ = survivor
}

// TestReleaseBuildHasNoTestComputeType: the engine's test compute type is
// only linked into test builds.
func TestReleaseBuildHasNoTestComputeType(t *testing.T) {
	saved := berthBin
	berthBin = releaseBin
	defer func() { berthBin = saved }()
	dir := t.TempDir()
	p := startServer(t, dir, freeAddr(t), nil)
	c, _ := client.New(p.url(), ownerToken(t, dir))
	ctx := context.Background()
	c.CreateWorkspace(ctx, api.WorkspaceCreateRequest{Name: "team"})
	_, err := c.CreateCompute(ctx, "team", testCompute("probe", t.TempDir(), 1, 0))
	var ce *client.Error
	if !errors.As(err, &ce) || ce.StatusCode != 400 || ce.Code() != api.CodeUnsupportedType || !strings.Contains(ce.Body.Message, `compute type "test" is not available`) {
		t.Fatalf("release build accepted the test type: %v", err)
	}
}
