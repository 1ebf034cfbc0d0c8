"""Built-in forwarders; each is registered under the `relay.forwarders` entry point group."""
