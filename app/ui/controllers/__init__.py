"""The main window's jobs, one small controller each, composed by :class:`MainWindow`.

- :mod:`.imports`: importing media and the demo study in the background, with the status-bar
  progress and the import report;
- :mod:`.reading`: reading tabs of local studies (the spare tab, thumbnails, the last slice);
- :mod:`.remote`: reading a study from a hub while it downloads;
- :mod:`.transfers`: the transfer queue runner, the Transfers panel, sending, hub settings;
- :mod:`.incoming`: the Incoming tab and its "N new" count.

Each controller owns its state, talks to the others only through signals and the few methods
the window wires, and reports to the user through its ``message`` signal (text, milliseconds)
that the window shows in its status bar.
"""
