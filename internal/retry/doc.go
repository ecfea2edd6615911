// Package retry runs an operation again after it fails, waiting a capped,
// exponentially growing delay between tries and logging each failure with
// fixed keys (err, retry_in, attempt).
//
// Do retries until the operation succeeds or the context ends; Forever
// keeps a long-running component going, restarting it whenever it
// returns, until the context ends. Neither ever gives up on its own: the
// context is the one way to stop them.
package retry
