// Everything of gradtape::distributed: the process group, collective ops, data-parallel training.
#pragma once

#include "distributed/checkpoint.h"
#include "distributed/collectives.h"
#include "distributed/communicator.h"
#include "distributed/moments.h"
#include "distributed/optimizer.h"
