"""Teachers: the `Teacher` protocol and the clients and servers behind it."""
