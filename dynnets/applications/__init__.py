"""Applications built on the core, the families and the training runtime; each is imported explicitly
(``import dynnets`` does not load them):

    pde          reference data on periodic grids, the exact ConvFD construction, the slides' error
                 splitting of a learned step, finite-difference heat solvers, a CNN baseline
    trial        trial-function network solvers of linear PDEs (the seed's heat problem)
    eigen        eigenpairs from the Yi eigen-ODE: the seed's procedure, a deflated Cayley solver, networks
    presnov      the Presnov decomposition and the gradient/sphere flows that approximate maps
    adversarial  L2 attacks, certified accuracy, the CIFAR-10 loader
    runner       the command line and outputs every experiment and benchmark share
    results_dir  which seeds an experiment's output directory holds, and the rule for adding seeds
"""
