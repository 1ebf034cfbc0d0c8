"""Getting each stored event to its targets: the dispatcher, retry policy, circuit
breaker, the outgoing HTTP transport with its SSRF guard, and forwarder discovery."""
