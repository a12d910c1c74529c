"""SMS-pumping corpus, baselines and score (issue 11, "Offline replay").

``corpus.py`` writes a labelled synthetic week of verification traffic,
``baselines.py`` replays it causally through two simple rules, ``score.py``
turns decisions and labels into the issue's goal table and ``run.py`` does all
three for several seeds. Scripts put ``bench/`` on ``sys.path`` and import this
package as ``pumping``.
"""
