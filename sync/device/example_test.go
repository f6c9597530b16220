package device_test

import (
	"context"
	"log"

	"github.com/syncplane/syncplane/sync/device"
	"github.com/syncplane/syncplane/tenant"
)

// A device's life: open, write with plain SQL, attach, sync, watch.
func Example() {
	ctx := context.Background()
	def, err := tenant.ParseDefinition([]byte(`{"tables": [{"name": "notes", "sync_key": "id", "columns": [
		{"name": "id", "type": "uuid"}, {"name": "title", "type": "text"}]}]}`))
	if err != nil {
		log.Fatal(err)
	}
	schema, err := tenant.NewSchema(def)
	if err != nil {
		log.Fatal(err)
	}
	c, err := device.Open(ctx, device.Config{
		Path:       "app.db",
		BaseURL:    "http://localhost:8080/k/sp_pk_example",
		Token:      func(context.Context) (string, error) { return "<end-user JWT>", nil },
		Schema:     schema,
		WireSchema: "app",
		Resolver:   device.KeepLocal, // or device.AcceptServer (default), device.Merge(fn)
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// The app writes its tables; triggers record the changes.
	if _, err := c.DB().ExecContext(ctx, `INSERT INTO notes (id, title) VALUES (?, ?)`,
		"0b7e5a4c-3f0e-4c38-9a55-2f8e7c1d9b21", "written offline"); err != nil {
		log.Fatal(err)
	}
	// Sign in: seeds an empty account from local rows, or hydrates from the
	// server's snapshot.
	if err := c.Attach(ctx); err != nil {
		log.Fatal(err)
	}
	// Push local changes, then pull everyone else's.
	if err := c.Sync(ctx); err != nil {
		log.Fatal(err)
	}
	// Or stay in sync until ctx ends.
	_ = c.Watch(ctx, func(ev device.WatchEvent) { log.Printf("synced bundle %d", ev.BundleSeq) })
}
