"""Imported by every worker of ``softgrad grade``'s local cluster as it starts (Dask's worker preload).

What a worker's first submission would otherwise import while the class waits for it: nbgrader
(its gradebook, its applications and the autograde converter), the course's preprocessors, and what
they use to start and talk to a kernel. The local cluster starts while the coordinator reads the
course and the submissions (:class:`softgrad.grader.grade.GradingCluster`), so this work overlaps
with the coordinator's instead of coming after it. Importing this module only imports them (and
what importing them does: the course's preprocessors share nbgrader's gradebook engines).
"""

import ipykernel.kernelspec  # noqa: F401
import IPython  # noqa: F401
import jupyter_client.manager  # noqa: F401
import nbgrader.api  # noqa: F401
import nbgrader.apps  # noqa: F401
import nbgrader.converters.autograde  # noqa: F401

import softgrad.grader.grade  # noqa: F401
import softgrad.grader.preprocessors  # noqa: F401
import softgrad.grader.template  # noqa: F401
