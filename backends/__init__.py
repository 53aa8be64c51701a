"""One module per framework, each implementing :class:`rnn_core.ops.Ops` with that framework's
calls only. Installed, this folder is the package ``rnn_core.backends``; import its modules through
:func:`rnn_core.get_backend`, which imports a framework only when it is asked for."""
