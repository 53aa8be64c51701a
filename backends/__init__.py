"""One module per framework, each implementing :class:`rnn_core.ops.Ops` with that framework's
calls only. Import them through :func:`rnn_core.get_backend`, which imports a framework only when
it is asked for."""
